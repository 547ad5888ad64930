import pytest

from wharf.formats.python.routes import negotiate


@pytest.mark.parametrize("accept,variant", [
    (None, "html"),
    (b"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01", "json"),
    (b"application/vnd.pypi.simple.v1+html", "html"),
    (b"application/vnd.pypi.simple.latest+json", "json"),
    (b"text/html", "html"),
    (b"*/*", "html"),
    (b"application/vnd.pypi.simple.v1+json;q=0.2, text/html;q=0.9", "html"),
    (b"application/xml", None),
    (b"application/vnd.pypi.simple.v1+json;q=0", None),
])
def test_pep691_negotiation(accept, variant):
    assert negotiate(accept) == variant
