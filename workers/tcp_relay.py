"""A TCP relay for the local stack: connections to LISTEN are passed on to TARGET, byte for
byte, both ways. Temporal's dev server works on the loopback only (given another address with
--ip, its frontend still dials its internal services at 127.0.0.1 and fails: measured), so
compute workers that run on hosts of their own (the two-host tier's network namespaces) reach
it at the bridge's address through this.

    python -m workers.tcp_relay 198.51.100.254:7233 127.0.0.1:7233
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from novaflow.net import parse_address

CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except OSError:  # either side went away: so does the other
        pass
    finally:
        writer.close()


async def relay(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))

    server = await asyncio.start_server(connected, *listen)
    print(f"relaying {listen[0]}:{listen[1]} to {target[0]}:{target[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("listen", type=parse_address, help="ADDRESS:PORT")
    parser.add_argument("target", type=parse_address, help="ADDRESS:PORT")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(args.listen, args.target))


if __name__ == "__main__":
    main()
