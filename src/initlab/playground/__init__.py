"""The playground: a local page where up to four initializations of one network train side by side.

``initlab playground`` starts the server (:func:`initlab.playground.server.serve`) and opens the page. The state of
a page is a :class:`~initlab.playground.setup.Setup` kept in its URL; the training is a
:class:`~initlab.playground.session.Session` (the population trainer, initlab's schemes and the article's presets,
:mod:`initlab.playground.presets`). The web stack (Starlette, uvicorn) is imported only by the server module, and
this package is not imported by ``import initlab``.
"""

from initlab.playground.setup import PRESETS, Arm, Setup, SetupError, parse_setup

__all__ = ["PRESETS", "Arm", "Setup", "SetupError", "parse_setup"]
