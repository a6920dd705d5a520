"""Multi-provider login libraries: an offer of WeChat or TikTok login is not a use of either app.

Libraries such as Auth.js (`@auth/core`), `grant`, django-allauth and python-social-auth each ship a table
of dozens of OAuth providers, WeChat's and TikTok's endpoints among them. An app that depends on one of
them, with those providers unconfigured, does not call WeChat or TikTok. So everything found inside such a
library's own files is set aside, and what counts is the user's own code choosing the provider: importing
`@auth/core/providers/wechat`, listing `allauth.socialaccount.providers.weixin` in INSTALLED_APPS, or
calling the service's endpoints itself. The libraries are listed in signatures.yaml (`catalogs`).

A file belongs to a library when it lies under the library's package folder: `node_modules/<name>/`, the
folder of a package.json that names it (an npm tarball's `package/`), or its Python import package folder
(`allauth/`, `social_core/`, in a wheel, an sdist or site-packages).
"""

from __future__ import annotations

from appban.code.model import Observation
from appban.code.signatures import Catalog
from appban.code.walk import MEMBER_SEP


class CatalogRoots:
    """Learns, while a scan runs, which folders hold a listed library, and answers afterwards which
    findings lie inside one (the package.json naming a folder may come after the files it covers)."""

    def __init__(self, catalogs: list[Catalog]) -> None:
        self._npm = {name.casefold(): catalog for catalog in catalogs for name in catalog.npm}
        self._python = {name: catalog for catalog in catalogs for name in catalog.python_modules}
        self._roots: dict[str, Catalog] = {}

    def observe(self, path: str, observation: Observation) -> None:
        """Notes the folder of a package.json that names a listed library."""
        if observation.kind != "npm" or observation.detail != "package":
            return
        catalog = self._npm.get(observation.value.casefold())
        if catalog is not None and _base(path) == "package.json":
            self._roots[path[: -len("package.json")]] = catalog

    def owner(self, path: str) -> Catalog | None:
        """The listed library whose own files include `path`, if any. The innermost package decides: a
        dependency installed inside a library's folder is that dependency, not the library."""
        folders = path.replace(MEMBER_SEP, "/").split("/")[:-1]
        for i in range(len(folders) - 2, -1, -1):
            if folders[i] == "node_modules":
                name = folders[i + 1]
                if name.startswith("@") and i + 2 < len(folders):
                    name = f"{name}/{folders[i + 2]}"
                return self._npm.get(name.casefold())
        roots = [root for root in self._roots if path.startswith(root)]
        if roots:
            return self._roots[max(roots, key=len)]
        for folder in folders:
            if (catalog := self._python.get(folder)) is not None:
                return catalog
        return None


def _base(path: str) -> str:
    return path.replace(MEMBER_SEP, "/").rsplit("/", 1)[-1]
