"""Ready-made authenticators: static tokens / API keys and JWT, from every credential source."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lucent_ws import CredentialReader, WebSocketManager, jwt_authenticator, token_authenticator

from .conftest import HubFactory, Peer, open_peer

Client = TestClient[web.Request, web.Application]
SECRET = "test-secret-of-at-least-32-bytes!!"


def make_jwt(
    sub: str = "user-42", *, key: str = SECRET, expires_in: float = 300, **claims: Any
) -> str:
    return jwt.encode(
        {"sub": sub, "exp": int(time.time() + expires_in), **claims}, key, algorithm="HS256"
    )


def credential_kwargs(source: str, token: str) -> dict[str, Any]:
    """``ws_connect`` arguments that carry ``token`` in one credential source."""
    if source == "header":
        return {"headers": {"Authorization": f"Bearer {token}"}}
    if source == "cookie":
        return {"headers": {"Cookie": f"lucent_ws_token={token}"}}
    if source == "protocol":
        return {"protocols": ("bearer", token)}
    if source == "query":
        return {"params": {"token": token}}
    raise AssertionError(source)


SOURCES = ["header", "cookie", "protocol", "query"]


async def expect_401(client: Client, manager: WebSocketManager, **kwargs: Any) -> None:
    """The handshake is refused with 401 before the upgrade; nothing is registered."""
    before = len(manager)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", **kwargs)
    assert info.value.status == 401
    assert info.value.headers is not None
    assert info.value.headers["WWW-Authenticate"] == "Bearer"
    assert len(manager) == before


# --- JWT ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_valid_jwt_from_each_source(
    source: str, make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    kwargs = credential_kwargs(source, make_jwt("user-42", role="editor"))
    peer = await open_peer(client, **kwargs)
    peers.append(peer)
    assert manager.get_meta(peer.id, "userId") == "user-42"
    assert manager.get_meta(peer.id, "claims")["role"] == "editor"
    if source == "protocol":
        # A browser drops a connection whose server picks no offered subprotocol.
        assert peer.ws.protocol == "bearer"


@pytest.mark.parametrize("source", SOURCES)
async def test_jwt_with_bad_signature_is_401(
    source: str, make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    forged = make_jwt(key="another-secret-of-at-least-32-bytes")
    await expect_401(client, manager, **credential_kwargs(source, forged))


async def test_expired_jwt_is_401(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    expired = make_jwt(expires_in=-60)
    await expect_401(client, manager, headers={"Authorization": f"Bearer {expired}"})


async def test_jwt_without_exp_is_401(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    token = jwt.encode({"sub": "user-42"}, SECRET, algorithm="HS256")
    await expect_401(client, manager, headers={"Authorization": f"Bearer {token}"})


async def test_jwt_with_none_algorithm_is_401(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    token = jwt.encode({"sub": "admin", "exp": int(time.time() + 300)}, key=None, algorithm="none")
    await expect_401(client, manager, headers={"Authorization": f"Bearer {token}"})


async def test_garbage_jwt_is_401_even_without_require_auth(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    # Credentials that are present but invalid are refused, not downgraded to anonymous.
    client = await make_hub(authenticate=jwt_authenticator(SECRET))
    await expect_401(client, manager, params={"token": "not-a-jwt"})


async def test_jwt_audience_and_issuer_are_checked(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    auth = jwt_authenticator(SECRET, audience="hub", issuer="https://id.example")
    client = await make_hub(authenticate=auth, require_auth=True)
    good = make_jwt(aud="hub", iss="https://id.example")
    peers.append(await open_peer(client, headers={"Authorization": f"Bearer {good}"}))
    for bad in (
        make_jwt(aud="other", iss="https://id.example"),
        make_jwt(aud="hub", iss="https://evil.example"),
    ):
        await expect_401(client, manager, headers={"Authorization": f"Bearer {bad}"})


async def test_jwt_custom_identity(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    auth = jwt_authenticator(SECRET, identity=lambda claims: {"tenant": claims["tid"]})
    client = await make_hub(authenticate=auth, require_auth=True)
    peer = await open_peer(client, params={"token": make_jwt(tid="acme")})
    peers.append(peer)
    assert manager.get_meta(peer.id, "tenant") == "acme"
    assert manager.get_meta(peer.id, "userId") is None


# --- static tokens / API keys ------------------------------------------------------

TOKENS = {
    "k3y-reports": {"userId": "svc-reports", "role": "service"},
    "k3y-editor": {"userId": 7, "role": "editor"},
}


@pytest.mark.parametrize("source", SOURCES)
async def test_api_key_from_each_source(
    source: str, make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(authenticate=token_authenticator(TOKENS), require_auth=True)
    peer = await open_peer(client, **credential_kwargs(source, "k3y-editor"))
    peers.append(peer)
    assert manager.get_meta(peer.id, "userId") == 7
    assert manager.get_meta(peer.id, "role") == "editor"


@pytest.mark.parametrize("source", SOURCES)
async def test_wrong_api_key_is_401(
    source: str, make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=token_authenticator(TOKENS), require_auth=True)
    await expect_401(client, manager, **credential_kwargs(source, "k3y-wrong"))


async def test_api_key_prefix_is_not_enough(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=token_authenticator(TOKENS), require_auth=True)
    await expect_401(client, manager, headers={"Authorization": "Bearer k3y-editor-extra"})
    await expect_401(client, manager, headers={"Authorization": "Bearer k3y-edito"})


async def test_missing_api_key_with_require_auth_is_401(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=token_authenticator(TOKENS), require_auth=True)
    await expect_401(client, manager)
    # A non-bearer Authorization scheme carries no credential.
    await expect_401(client, manager, headers={"Authorization": "Basic azN5LWVkaXRvcjo="})


async def test_missing_api_key_without_require_auth_is_anonymous(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(authenticate=token_authenticator(TOKENS))
    peer = await open_peer(client)
    peers.append(peer)
    assert manager.get_meta(peer.id, "userId") is None


async def test_reader_limited_to_header_ignores_query(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    reader = CredentialReader(sources=("header",))
    client = await make_hub(
        authenticate=token_authenticator(TOKENS, reader=reader), require_auth=True
    )
    await expect_401(client, manager, params={"token": "k3y-editor"})
    peer = await open_peer(client, headers={"Authorization": "Bearer k3y-editor"})
    peers.append(peer)


async def test_reader_custom_cookie_and_query_names(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    reader = CredentialReader(cookie_name="sid", query_param="key")
    client = await make_hub(
        authenticate=token_authenticator(TOKENS, reader=reader), require_auth=True
    )
    peers.append(await open_peer(client, headers={"Cookie": "sid=k3y-reports"}))
    peers.append(await open_peer(client, params={"key": "k3y-reports"}))
    assert len(manager) == 2
    await expect_401(client, manager, params={"token": "k3y-reports"})


async def test_credentials_are_not_logged(
    make_hub: HubFactory, caplog: pytest.LogCaptureFixture, peers: list[Peer]
) -> None:
    caplog.set_level("DEBUG")
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    token = make_jwt()
    peers.append(await open_peer(client, protocols=("bearer", token)))
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws", params={"token": token + "x"})
    # aiohttp's default access log (the host app's choice) prints the query string;
    # lucent_ws's own loggers never print credentials (the CLI's access log: test_cli).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("lucent_ws")]
    assert not any(token in line for line in ours)
