"""pyro-vae: PCA → autoencoder → variational autoencoder, written as Pyro programs.

The public API:

- ``pyro_vae.data.load(name)``: train/test tensors in [0, 1] with labels and image shape;
- ``pyro_vae.models`` / ``pyro_vae.guides``: Pyro programs ``model(x)`` and ``guide(x)`` as ``nn.Module`` s;
- ``pyro_vae.train.fit(model, guide, data)``: SVI for *any* model/guide pair;
- ``pyro_vae.evaluate``: ELBO parts and importance-sampled log p(x) from Pyro traces;
- ``pyro_vae.plots``: the lecture's figures.
"""

from pyro_vae.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
