"""What a host's hypervisor is asked for, as pure data: domain XML, test-driver node files, the
console log's tail. The libvirt calls themselves are in hypervisor/."""
