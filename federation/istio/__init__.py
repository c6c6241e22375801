"""Istio's own rules for the objects federation reads and writes, re-implemented module by module.

Each module can be read beside the Istio (or Go) source it follows; no Istio code is copied.

* :mod:`.gostrings`, :mod:`.netip`: Go's quoting, string and address parsing, as Istio uses them;
* :mod:`.jsonreader`: reading JSON the way Go's decoder fills Istio's structs;
* :mod:`.values`: Istio's checks of single values (host names, labels, IPs, ports, protocols);
* :mod:`.serviceentry`, :mod:`.endpoints`, :mod:`.resolution`: ``ValidateServiceEntry``;
* :mod:`.visibility`: ``exportTo``, what Istio accepts and who can see an object;
* :mod:`.hosts`: the hosts a ServiceEntry or DestinationRule declares.
"""
