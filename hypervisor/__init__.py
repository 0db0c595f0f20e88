"""A compute host's hypervisor, through libvirt: the one package that imports libvirt. The
domain (novaflow/) describes what a domain is (novaflow/virt/domain_xml.py); this package makes
it so on one host."""
