"""The reference client's cryptography alone, without Rapport: X3DH and the Double Ratchet
between two devices."""

from __future__ import annotations

import pytest

from tests.e2ee.signal_protocol import (
    MAX_SKIP,
    Bundle,
    DecryptionError,
    DeviceKeys,
    Peer,
    UntrustedBundle,
    decrypt_prekey,
    x3dh_initiate,
    x3dh_respond,
)


def bundle_of(keys: DeviceKeys, *, one_time: bool = True) -> Bundle:
    key_id = min(keys.one_time_prekeys) if one_time and keys.one_time_prekeys else None
    return Bundle(
        identity_key=keys.identity_key,
        signing_key=keys.signing_key,
        signed_prekey_id=keys.signed_prekey.key_id,
        signed_prekey=keys.signed_prekey.public_key,
        signature=keys.signed_prekey.signature,
        one_time_prekey_id=key_id,
        one_time_prekey=None if key_id is None else keys.one_time_public(key_id),
    )


def connected() -> tuple[DeviceKeys, Peer, DeviceKeys, Peer]:
    """Alice's session with Bob's device, and Bob's with hers, after her first message."""
    alice, bob = DeviceKeys.generate(2), DeviceKeys.generate(2)
    to_bob = Peer.initiate(alice, bundle_of(bob))
    kind, first = to_bob.encrypt(b"hello bob")
    assert kind == "prekey"
    to_alice, plaintext = decrypt_prekey(bob, None, first)
    assert plaintext == b"hello bob"
    return alice, to_bob, bob, to_alice


def test_x3dh_gives_both_sides_the_same_key_and_associated_data() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate(1)
    initiation = x3dh_initiate(alice, bundle_of(bob))
    shared_key, associated_data = x3dh_respond(
        bob,
        identity_key=alice.identity_key,
        ephemeral_key=initiation.ephemeral_key,
        signed_prekey_id=initiation.signed_prekey_id,
        one_time_prekey_id=initiation.one_time_prekey_id,
    )
    assert (shared_key, associated_data) == (initiation.shared_key, initiation.associated_data)
    assert associated_data == alice.identity_key + bob.identity_key
    assert len(shared_key) == 32


def test_x3dh_without_a_one_time_prekey_still_agrees() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    to_bob = Peer.initiate(alice, bundle_of(bob, one_time=False))
    _, first = to_bob.encrypt(b"no prekeys left")
    _, plaintext = decrypt_prekey(bob, None, first)
    assert plaintext == b"no prekeys left"


def test_a_bundle_whose_signature_does_not_verify_is_refused() -> None:
    alice, bob, mallory = DeviceKeys.generate(), DeviceKeys.generate(1), DeviceKeys.generate()
    forged = bundle_of(bob)
    forged = Bundle(**{**forged.__dict__, "signed_prekey": mallory.signed_prekey.public_key})
    with pytest.raises(UntrustedBundle):
        x3dh_initiate(alice, forged)


def test_the_one_time_prekey_is_used_once() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate(1)
    to_bob = Peer.initiate(alice, bundle_of(bob))
    _, first = to_bob.encrypt(b"once")
    decrypt_prekey(bob, None, first)
    assert bob.one_time_prekeys == {}
    with pytest.raises(DecryptionError):
        decrypt_prekey(bob, None, first)  # replayed to a device that forgot the session


def test_messages_go_both_ways_and_the_prekey_header_stops_once_answered() -> None:
    _, to_bob, bob, to_alice = connected()
    kind, second = to_bob.encrypt(b"second, still unanswered")
    assert kind == "prekey"
    same, plaintext = decrypt_prekey(bob, to_alice, second)
    assert (same, plaintext) == (to_alice, b"second, still unanswered")
    assert len(to_alice.sessions) == 1, "the session it belongs to, not a new one"
    kind, reply = to_alice.encrypt(b"hi alice")
    assert kind == "message"
    assert to_bob.decrypt(reply) == b"hi alice"
    for turn in range(5):
        kind, message = to_bob.encrypt(f"a{turn}".encode())
        assert kind == "message"
        assert to_alice.decrypt(message) == f"a{turn}".encode()
        assert to_bob.decrypt(to_alice.encrypt(f"b{turn}".encode())[1]) == f"b{turn}".encode()


def test_out_of_order_messages_decrypt_across_ratchet_steps() -> None:
    _, to_bob, _, to_alice = connected()
    to_bob.decrypt(to_alice.encrypt(b"reply")[1])
    first_chain = [to_bob.encrypt(f"one {n}".encode())[1] for n in range(3)]
    assert to_alice.decrypt(first_chain[2]) == b"one 2"
    to_bob.decrypt(to_alice.encrypt(b"turn")[1])
    second_chain = [to_bob.encrypt(f"two {n}".encode())[1] for n in range(2)]

    assert to_alice.decrypt(second_chain[1]) == b"two 1"
    assert to_alice.decrypt(first_chain[0]) == b"one 0"
    assert to_alice.decrypt(second_chain[0]) == b"two 0"
    assert to_alice.decrypt(first_chain[1]) == b"one 1"


def test_a_message_decrypts_once() -> None:
    _, to_bob, _, to_alice = connected()
    to_bob.decrypt(to_alice.encrypt(b"reply")[1])
    _, message = to_bob.encrypt(b"only once")
    assert to_alice.decrypt(message) == b"only once"
    with pytest.raises(DecryptionError):
        to_alice.decrypt(message)


def test_a_tampered_message_is_refused_and_leaves_the_session_working() -> None:
    _, to_bob, _, to_alice = connected()
    to_bob.decrypt(to_alice.encrypt(b"reply")[1])
    _, message = to_bob.encrypt(b"pay 10 dollars")
    for position in (0, 33, len(message) - 1):  # the ratchet key, the counters, the tag
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            to_alice.decrypt(bytes(tampered))
    assert to_alice.decrypt(message) == b"pay 10 dollars"


def test_a_message_for_another_session_is_refused() -> None:
    _, to_bob, _, _ = connected()
    _, _, _, stranger = connected()
    with pytest.raises(DecryptionError):
        stranger.decrypt(to_bob.encrypt(b"not yours")[1])


def test_a_message_too_far_ahead_is_refused() -> None:
    _, to_bob, _, to_alice = connected()
    to_bob.decrypt(to_alice.encrypt(b"reply")[1])
    ratchet = to_bob.sessions[0].ratchet
    ratchet.sent = MAX_SKIP + 5  # as if that many were sent and lost
    with pytest.raises(DecryptionError):
        to_alice.decrypt(to_bob.encrypt(b"far ahead")[1])


def test_both_sides_starting_at_once_still_talk() -> None:
    alice, bob = DeviceKeys.generate(1), DeviceKeys.generate(1)
    to_bob = Peer.initiate(alice, bundle_of(bob))
    to_alice = Peer.initiate(bob, bundle_of(alice))
    from_alice = to_bob.encrypt(b"from alice")[1]
    from_bob = to_alice.encrypt(b"from bob")[1]

    to_alice, plaintext = decrypt_prekey(bob, to_alice, from_alice)
    assert plaintext == b"from alice"
    to_bob, plaintext = decrypt_prekey(alice, to_bob, from_bob)
    assert plaintext == b"from bob"
    # Each now answers in the session the other started; both keep working.
    assert to_bob.decrypt(to_alice.encrypt(b"bob again")[1]) == b"bob again"
    assert to_alice.decrypt(to_bob.encrypt(b"alice again")[1]) == b"alice again"


def test_a_prekey_message_written_before_a_signed_prekey_rotation_still_decrypts() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate(1)
    to_bob = Peer.initiate(alice, bundle_of(bob))
    _, first = to_bob.encrypt(b"written before the rotation")
    bob.rotate_signed_prekey()
    _, plaintext = decrypt_prekey(bob, None, first)
    assert plaintext == b"written before the rotation"
