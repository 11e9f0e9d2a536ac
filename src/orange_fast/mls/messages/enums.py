"""RFC 9420 enumerations (§6, §5.3, §7, §12.1, §17): protocol version, wire format, content, sender, credential,
proposal, extension, PSK and node types.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ContentType", "CredentialType", "ExtensionType", "LeafNodeSource", "NodeType", "PSKType",
    "ProposalOrRefType", "ProposalType", "ProtocolVersion", "ResumptionPSKUsage", "SenderType", "WireFormat",
]


class ProtocolVersion(IntEnum):
    mls10 = 1


class WireFormat(IntEnum):
    public_message = 1
    private_message = 2
    welcome = 3
    group_info = 4
    key_package = 5


class ContentType(IntEnum):
    application = 1
    proposal = 2
    commit = 3


class SenderType(IntEnum):
    member = 1
    external = 2
    new_member_proposal = 3
    new_member_commit = 4


class CredentialType(IntEnum):
    basic = 1
    x509 = 2


class LeafNodeSource(IntEnum):
    key_package = 1
    update = 2
    commit = 3


class ProposalType(IntEnum):
    add = 1
    update = 2
    remove = 3
    psk = 4
    reinit = 5
    external_init = 6
    group_context_extensions = 7


class ProposalOrRefType(IntEnum):
    proposal = 1
    reference = 2


class ExtensionType(IntEnum):
    application_id = 1
    ratchet_tree = 2
    required_capabilities = 3
    external_pub = 4
    external_senders = 5


class PSKType(IntEnum):
    external = 1
    resumption = 2


class ResumptionPSKUsage(IntEnum):
    application = 1
    reinit = 2
    branch = 3


class NodeType(IntEnum):
    leaf = 1
    parent = 2
