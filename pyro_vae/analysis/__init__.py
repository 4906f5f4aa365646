"""The numbers behind the lecture's claims, one module per step of the lecture; the examples, notebooks
and tests share them.

- ``subspaces``: PCA is the best linear encoder/decoder; a linear autoencoder finds PCA's subspace, in another basis (§1, §2).
- ``experiment``: The lecture's small models, built and trained through the package's machinery (every step's experiments).
- ``ablation``: Drop one term of the ELBO with an effect handler, and read the terms of a trained model (§6).
- ``corruption``: Denoising: corrupt the input, reconstruct the clean example (§4).
- ``latent_space``: The latent space: gaps between an autoencoder's codes, how classes separate, moving along codes (§5, §9, §10).
- ``gradients``: The reparameterization trick: pathwise against score-function gradients (§8).
- ``bayes``: Bayes and the ELBO in closed form: log p(x) = ELBO + KL(q ‖ p(z|x)) for a linear Gaussian model (§11).
- ``sampling``: Generated images and their controls: prior draws, Gaussian-fitted draws, blends (judged by pyro_vae.quality).
"""
