"""Every payload novaflow hands Temporal is encrypted (AES-GCM) before it leaves the process:
workflow inputs and results, update and signal arguments, activity inputs and results, memos,
summaries. Temporal stores, and shows without the codec, only ciphertext.

Every Temporal client of novaflow (API, workers, ops CLI, tests, bench) connects with
`data_converter(keys)`; workflows never see this package (the codec runs outside the sandbox).
The Temporal UI decodes through the API's codec endpoint (api/codec_server.py).
"""

from codec.encryption import (
    ENCODING,
    KEY_FILE,
    KEY_ID,
    EncryptionCodec,
    PayloadKeyError,
    data_converter,
    decode_message,
    key_id,
    load_keys,
    new_key,
    parse_keys,
)

__all__ = [
    "ENCODING",
    "KEY_FILE",
    "KEY_ID",
    "EncryptionCodec",
    "PayloadKeyError",
    "data_converter",
    "decode_message",
    "key_id",
    "load_keys",
    "new_key",
    "parse_keys",
]
