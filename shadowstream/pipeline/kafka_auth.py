"""SASL and TLS for Faust's own Kafka connection (aiokafka), from the librdkafka options.

Every confluent-kafka client takes the deployment's ``kafka_options`` and
``kafka_secrets`` as they are (librdkafka property names). Faust's aiokafka
connection does not understand those names, so the same properties are
translated here into Faust ``broker_credentials``:

=================================  ==========================================
librdkafka property                aiokafka / Faust
=================================  ==========================================
``security.protocol``              ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``,
                                   ``SASL_SSL``
``sasl.mechanism(s)``              ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``
``sasl.username`` / ``.password``  SASL credentials
``ssl.ca.location``                CA file or directory of the TLS context
``ssl.certificate.location``,      client certificate (mutual TLS)
``ssl.key.location``,
``ssl.key.password``
``ssl.endpoint.identification.``  ``none`` turns off the host name check
``algorithm``
``enable.ssl.certificate.``        ``false`` turns off certificate verification
``verification``
=================================  ==========================================

Anything else that would make the two connections differ (another SASL
mechanism, an unknown protocol) is a configuration error, never a silent
plaintext connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from shadowstream.core.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def security_protocol(options: Mapping[str, Any]) -> str:
    """The configured ``security.protocol`` (upper case), PLAINTEXT by default."""
    protocol = str(options.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"kafka_options security.protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """The TLS context the librdkafka ``ssl.*`` options describe."""
    ca = options.get("ssl.ca.location")
    try:
        if ca and os.path.isdir(str(ca)):
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, capath=str(ca))
        else:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None
            )
        cert = options.get("ssl.certificate.location")
        if cert:
            key = options.get("ssl.key.location")
            password = options.get("ssl.key.password")
            context.load_cert_chain(
                str(cert), str(key) if key else None, str(password) if password else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the Kafka TLS files: {exc.strerror or exc}") from None
    identification = str(options.get("ssl.endpoint.identification.algorithm", "https")).lower()
    if identification in ("none", ""):
        context.check_hostname = False
    verify = str(options.get("enable.ssl.certificate.verification", "true")).lower()
    if verify in ("false", "0"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def faust_credentials(options: Mapping[str, Any]) -> Any:
    """Faust ``broker_credentials`` for these options (None: plaintext, no SASL)."""
    import faust

    protocol = security_protocol(options)
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(options) if protocol.endswith("SSL") else None
    if not protocol.startswith("SASL"):
        return faust.SSLCredentials(context)
    mechanism = str(options.get("sasl.mechanism") or options.get("sasl.mechanisms") or "PLAIN")
    mechanism = mechanism.upper()
    if mechanism not in MECHANISMS:
        raise ConfigError(
            f"kafka_options sasl.mechanism {mechanism!r}: the agents support "
            f"{', '.join(MECHANISMS)}"
        )
    username, password = options.get("sasl.username"), options.get("sasl.password")
    if not username or not password:
        raise ConfigError(
            f"security.protocol {protocol} needs sasl.username and sasl.password "
            "(put the password in kafka_secrets or SHADOW_KAFKA_SECRETS, not in the config file)"
        )
    return faust.SASLCredentials(
        username=str(username), password=str(password), mechanism=mechanism, ssl_context=context
    )
