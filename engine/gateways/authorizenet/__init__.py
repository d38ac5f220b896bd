"""The Authorize.Net gateway adapter: its JSON wire format (`wire`), HTTP (`client`), the
`Gateway` implementation (`gateway`) and its `PAYGRID_AUTHORIZENET_*` settings."""

from engine.gateways.authorizenet.gateway import AuthorizeNetGateway, open_authorizenet
from engine.gateways.authorizenet.settings import AuthorizeNetSettings

__all__ = ["AuthorizeNetGateway", "AuthorizeNetSettings", "open_authorizenet"]
