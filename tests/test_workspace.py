import importlib.metadata


def test_every_distribution_is_installed_at_one_version() -> None:
    names = ["papyra-core", "papyra-backend-json", "papyra-backend-rotation",
             "papyra-backend-redis", "papyra-cli"]
    versions = {importlib.metadata.version(n) for n in names}
    assert len(versions) == 1
