from hub.keys import hash_key, key_id_of, make_key_text, new_key_id


def test_key_text_carries_its_id_and_hashes_stably() -> None:
    key_id = new_key_id()
    text = make_key_text(key_id)
    assert text.startswith(f"pl_{key_id}_")
    assert key_id_of(text) == key_id
    assert hash_key(text) == hash_key(text)
    assert hash_key(text) != hash_key(make_key_text(key_id))
    assert text not in hash_key(text)


def test_malformed_keys_have_no_id() -> None:
    assert key_id_of("") is None
    assert key_id_of("pl_short_x") is None
    assert key_id_of("xx_0123456789abcdef_secret") is None
    assert key_id_of("pl_0123456789abcdef_") is None
