"""Every default of an IRT run, defined once; no torch here, so ``pyro-vae irt --help`` stays quick."""

KINDS = ("lecture", "1pl", "2pl")  # the item response functions of ``pyro_vae.models.irt``
GUIDES = ("amortized", "meanfield")  # q(ability): an encoder of the answers, or free numbers per student
ITEMS = ("latent", "point")  # q(item parameters): a Normal per item, or a point estimate (MAP)
MAX_BATCH = 1000  # students per step when no batch size is given: all of them, up to this many
DEFAULTS = {"data": "lsat", "kind": "2pl", "guide": "amortized", "items": "latent", "epochs": 500, "lr": 0.2,
            "num_particles": 1, "seed": 0, "batch_size": None}
