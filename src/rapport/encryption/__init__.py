"""End-to-end encryption (issue 19): the server's part of Signal's X3DH and Double Ratchet,
pairwise per device (docs/decisions/0028). A key directory (each device's public keys and
one-time prekeys, each handed out once) and a mailbox per device (the ciphertexts a sender
made for it). Rapport stores public keys and opaque bytes, never a private key or a text.
Schema `encryption`."""
