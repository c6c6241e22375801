"""The metadata documents clusters exchange, parsed and built in this package only.

Wire format (Deckhouse-compatible):

* ``/metadata/public/public.json``: ``{"clusterUUID", "authnKeyPub", "rootCA"}``
* ``/metadata/private/federation.json``:
  ``{"ingressGateways": [{"address", "port"}],
  "publicServices": [{"hostname", "ports": [{"name", "port", "protocol"}]}]}``

Bytes from the network are decoded by :func:`.reading.decode_json` within :mod:`federation.boundedjson`'s
limits (size, depth, numbers, strings, members), so no document can crash a parser.

The public document is all or nothing: every problem is reported with its JSON path, and a bad
document never replaces good data.

The private document is refused whole only when its **envelope** is broken: not an object,
``ingressGateways`` or ``publicServices`` missing or not lists, or more entries than a
ServiceEntry can hold.  Otherwise each gateway, each service
and each port is checked on its own; what cannot be imported is skipped with a reason
(:class:`.skips.SkippedGateway`, :class:`.skips.SkippedService`, :class:`.skips.SkippedPort`) and the
rest is imported.  Deckhouse's exporter publishes what Deckhouse itself only partly supports, so this
matters:

* an unnamed port (``{"name": "", "port": 80}``; Kubernetes allows it on a single-port Service)
  is imported under a derived name, ``<protocol>-<number>`` (``tcp-80``).  A ServiceEntry port
  needs a name, but nothing across the federation depends on it: the remote gateway routes by SNI,
  which holds the port number, not the name.  The derived name follows Istio's
  ``<protocol>[-<suffix>]`` convention, so Istio and Deckhouse's name rule both read TCP from it,
  and TCP carries any traffic (without L7 features).  Should it collide with another port's name,
  the unnamed port is skipped instead;
* a port whose protocol is UDP (or anything but TCP, HTTP, HTTP2 and TLS) is skipped: the
  ingress gateway forwards TLS over TCP only;
* a service without ports (an ExternalName Service: ``ports: []`` or ``null``) is skipped;
* a port name must pass the rule the webhook applies to ServiceEntry port names (Istio's
  ``IsDNS1123Label``, :func:`federation.istio.values.is_dns1123_label`), so nothing the reconciler
  writes from it can be refused, or inject text; and, since a remote's port names come from its
  Services, the rule Kubernetes applies to a Service port name (``IANA_SVC_NAME``: at most 15
  lowercase letters, digits and ``-``, at least one letter, no ``-`` at either end or twice in a
  row, :func:`.public_services.service_port_name_problem`): anything else (``UPPER``, 30 characters)
  was not written by a Kubernetes exporter;
* a gateway address must be an IP or a DNS name that does not point into this cluster: loopback,
  unspecified, link-local (cloud metadata at 169.254.169.254) and multicast addresses,
  ``localhost`` and single-label names are refused, and so are the caller's ``refused_networks``
  and ``refused_domains``.  When no gateway is left (none published, or every one refused) the
  document still parses, with no ``ingress_gateways``: whether that is usable is the caller's
  policy (the reconciler keeps its last known objects, since nothing could reach them).

Deckhouse's exporter sends no ``protocol``, so a Deckhouse peer's UDP port cannot be told from a
TCP one here: it is imported as TCP (its name decides the protocol), and traffic to it fails at
the remote gateway.

All remote text in messages is cut short and made printable (:mod:`federation.remotetext`).

One module per part:

* :mod:`.reading`: decoding a body within limits, :class:`.reading.DocumentError`, and reading
  one remote field into a value or a field error;
* :mod:`.public`: the public document and its root CA check;
* :mod:`.private`: the private document's envelope, and what it imports and skips;
* :mod:`.ingress_gateways`: one gateway entry, and which addresses are refused;
* :mod:`.public_services`: one service entry and its ports, and the port name rules;
* :mod:`.skips`: the records of skipped entries and their closed set of reasons.
"""
