"""Every default of a topic run, defined once; no torch here, so ``pyro-vae topics --help`` stays quick."""

MODELS = ("lda", "prodlda")
# Adam's step size: LDA's Dirichlet concentrations move faster than ProdLDA's decoder weights
LEARNING_RATES = {"lda": 0.05, "prodlda": 0.01}
DEFAULTS = {"corpus": "lee", "model": "prodlda", "topics": 10, "eta": 0.1, "hidden": 100, "dropout": 0.2,
            "min_df": 2, "max_df": 0.5, "max_features": 2000, "test_size": 0.2, "epochs": 100, "batch_size": 64,
            "seed": 0, "baseline_iter": 50}


def default_alpha(model: str, topics: int) -> float:
    """Dirichlet(α) of θ_d: 1/T for LDA (sklearn's default), 1 for ProdLDA (its Laplace approximation's)."""
    return 1.0 / topics if model == "lda" else 1.0
