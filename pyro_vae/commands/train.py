"""pyro-vae train: fit the lecture's VAE, or your own Pyro program (--program), by SVI; write a run folder."""

from __future__ import annotations

import json
from pathlib import Path

from pyro_vae import settings
from pyro_vae.commands.options import add_run_folder, saved_config
from pyro_vae.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a VAE (or your own Pyro program) by SVI on the ELBO",
                       description="Train the lecture's VAE: p(z)=N(0,I), p(x|z)=N(f(z), cI) (or Bernoulli), "
                                   "with the amortized guide q_x(z)=N(μ(x), σ(x)²), by SVI on Trace_ELBO; or your "
                                   "own model and guide with --program FILE.py:NAME.")
    model = p.add_argument_group("the model (on --resume: the run's own; a different value is an error)")
    settings.add_arguments(model, settings.VAESettings)
    model.add_argument("--program", metavar="FILE.py:NAME",
                       help="train your own Pyro model and guide instead of the VAE: NAME is a (model, guide) pair, "
                            "an object with .model and .guide, or a function returning one (given the data set if "
                            "it takes an argument); see docs/programs.md")
    model.add_argument("--index", action="store_true",
                       help="with --program: call model(x, index) with each row's index in the training set, for "
                            "local parameters in pyro.plate('data', N, subsample=index)")
    model.add_argument("--arrays", metavar="NAME,NAME", type=lambda text: text.split(","),
                       help="with --program and a .npz: the arrays passed to model(...) and guide(...), in order "
                            "(e.g. x,y for model(x, y)); default: the array x (or the first one)")
    model.add_argument("--data-dir", help="where mnist/fashion-mnist are looked for and downloaded "
                                          "(default: $PYRO_VAE_DATA, else ~/.cache/pyro-vae)")
    objective = p.add_argument_group("the objective (on --resume: the run's own; a different value is an error)")
    settings.add_arguments(objective, settings.ObjectiveSettings)
    training = p.add_argument_group("training (on --resume: the run's own unless given, e.g. --epochs 40 to go on)")
    settings.add_arguments(training, settings.TrainingSettings)
    add_run_folder(p, "runs/vae")
    p.set_defaults(run=run)


def run(args) -> None:
    import pyro

    from pyro_vae import callbacks as cb
    from pyro_vae import data as datasets
    from pyro_vae import builders, distributed, plots, runs
    from pyro_vae import program as programs
    from pyro_vae.train import fit

    distributed.init_from_env()
    saved = distributed.from_rank0(lambda: saved_config(args))  # only machine 0 needs the run folder
    program = args.program or (saved.get("program") if saved.get("model") == "program" else None)
    if args.resume and args.program and saved.get("program") not in (None, builders.program_spec(args.program)):
        raise UserError(f"--resume: the run was trained with --program {saved.get('program')}; drop the flag "
                        "or start a new --out")
    given = vars(args)
    model_settings = settings.VAESettings.resolve(given, saved, fixed=True)
    objective_settings = settings.ObjectiveSettings.resolve(given, saved, fixed=True)
    training = settings.TrainingSettings.resolve(given, saved, fixed=False)
    if objective_settings.binarize and model_settings.likelihood != "bernoulli" and not program:
        raise UserError(f"--binarize dynamic draws binary pixels, for --likelihood bernoulli, "
                        f"not {model_settings.likelihood}")
    data_dir = args.data_dir if args.data_dir is not None else saved.get("data_dir")
    arrays = args.arrays or saved.get("arrays")
    if arrays and not program:
        raise UserError("--arrays passes further arrays to your own program's model(x, ...): use it with --program")
    dataset = datasets.load(model_settings.dataset, data_dir, test_size=model_settings.test_fraction, seed=0,
                            arrays=arrays, stream=model_settings.stream, keep_shape=bool(program))
    pyro.clear_param_store()  # a new program: no pyro.param value may come from an earlier one in this process
    pyro.set_rng_seed(training.seed)  # the networks' initial weights
    if program:
        index = args.index or saved.get("index", False)
        config = {"model": "program", "program": builders.program_spec(program), "index": index, "arrays": arrays,
                  "keep_shape": True,
                  "dataset": model_settings.dataset, "test_fraction": model_settings.test_fraction,
                  "shape": list(dataset.shape)}
        model, guide = runs.build(config, dataset)
    else:
        datasets.check_values(dataset.train, model_settings.likelihood)
        config = {"model": "vae", **model_settings.to_dict(), "shape": list(dataset.shape)}
        model, guide = runs.build(config)
        index = False
    config.update(objective_settings.to_dict(), data_dir=data_dir, data_scaling=dataset.scaling)
    binarize = objective_settings.binarize == "dynamic"
    test = (datasets.binarized_test(dataset.test), *dataset.test_extra) if binarize else dataset.test_rows
    train_data = (*dataset.train_rows, builders.row_index(dataset.train)) if index else dataset.train_rows
    note = cb.Announce(f"data: {dataset.name}, {dataset.train.shape[0]} training and {dataset.test.shape[0]} test "
                       f"rows of {dataset.dim} values; {dataset.scaling}", args.quiet)
    history = fit(model, guide, train_data, test_data=None if index or not dataset.test.shape[0] else test,
                  settings=training, objective=builders.objective(config),
                  transform=datasets.binarize_batch if binarize else None, out=args.out, resume=args.resume,
                  overwrite=args.overwrite, config=config,
                  callbacks=[note, *(programs.callbacks(config["program"]) if program else ())], quiet=args.quiet)
    if distributed.rank_and_world()[0] != 0:
        return
    if not args.no_figures:
        if program:  # what applies to the program: the curves, reconstructions and samples where it has a decoder
            runs.ProgramRun(Path(args.out), runs.read_config(args.out), model, guide, history).figures()
        else:
            plots.all_figures(model, guide, dataset, history, Path(args.out) / "figures")
    last = history[-1] if history else {}
    print(json.dumps({"run": str(args.out), **{k: last[k] for k in ("epoch", "train_elbo", "test_elbo") if k in last}}))
