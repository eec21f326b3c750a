"""A playground setup as the equivalent ``initlab compare`` / ``initlab diagnose`` command and Python code.

The command is the nearest study the CLI can run (it trains several seeds and standardizes the data, which the page
does not); what it cannot express is said in a comment line. The Python code trains exactly the page's arms with
the same data, initializations, settings and seed through :class:`initlab.training.Population`, in float32 (the
page trains the 2-D sets in float64: its digits agree to about six places).
"""

from __future__ import annotations

import shlex

from initlab.playground.setup import Arm, Setup

#: The catalog arm closest to each article preset, for the command line (which takes names only).
_PRESET_NAMES = {"zero": "zeros", "small": "random_normal", "appropriate": "kaiming_normal", "large": "random_normal"}


def _cli_name(arm: Arm, act: str) -> str:
    if arm.preset is None:
        return arm.name
    if arm.preset == "appropriate" and act not in ("relu", "leaky_relu", "gelu"):
        return "lecun_normal"
    return _PRESET_NAMES[arm.preset]


def as_command(setup: Setup, steps: int = 1000) -> str:
    """``initlab compare ...`` and ``initlab diagnose ...`` for ``setup`` (two lines, with comments)."""
    inits = ",".join(dict.fromkeys(_cli_name(a, setup.act) for a in setup.arms))
    dataset = "circles" if setup.data == "dlai-circles" else setup.data
    optimizer = "sgd" if setup.opt in ("sgd", "momentum") else "adam"
    args = ["initlab", "compare", "--dataset", dataset, "--model", setup.model_spec, "--inits", inits,
            "--optimizer", optimizer, "--lr", f"{setup.lr:g}", "--batch-size", str(setup.batch or setup.n_train),
            "--steps", str(steps), "--seeds", "1"]  # fmt: skip
    if setup.opt == "momentum":
        args += ["--momentum", "0.9"]
    notes = []
    scales = {a.scale for a in setup.arms}
    if len(scales) == 1 and scales != {1.0}:
        args += ["--scale", f"{scales.pop():g}"]
    elif len(scales) > 1:
        notes.append("the arms' scales differ (" + ", ".join(f"{a.label}" for a in setup.arms) + "); --scale sweeps "
                     "one scale over every arm")  # fmt: skip
    if any(a.preset in ("small", "large") or a.std is not None for a in setup.arms):
        notes.append(
            "random_normal takes its default std 0.05 here; the page's arms use "
            + ", ".join(a.label for a in setup.arms if a.preset in ("small", "large") or a.std)
        )
    if setup.data != "mnist":
        notes.append(f"the page draws {setup.n_train}+{setup.n_test} samples (noise {setup.noise:g}) and keeps them "
                     "unstandardized; a study uses the data set's defaults, standardized")  # fmt: skip
    diagnose = ["initlab", "diagnose", "--model", setup.model_spec, "--scheme", inits, "--dataset", dataset,
                "--seed", str(setup.seed)]  # fmt: skip
    lines = [f"# {n}" for n in notes]
    lines += [shlex.join(args), shlex.join(diagnose)]
    return "\n".join(lines)


def as_python(setup: Setup, steps: int = 1000) -> str:
    """A script that trains the page's arms as the page does (see the module docstring)."""
    s = setup
    binary = s.data not in ("spiral", "gaussians", "mnist")
    outputs = 1 if binary else 10 if s.data == "mnist" else 3
    loss = "bce" if binary else "cross_entropy"
    optimizer = "adam" if s.opt == "adam" else "sgd"
    momentum = ", momentum=0.9" if s.opt == "momentum" else ""
    lines = [
        f'"""The initlab playground\'s setup ?{s.to_query()}"""',
        "import torch",
        "",
        "import initlab",
        "from initlab import data, models",
        "from initlab.playground.presets import apply_preset, dlai_data",
        "from initlab.seeding import derive_seed",
        "from initlab.training import Batch, Population, TrainSettings",
        "",
        f"STEPS = {steps}",
        f"SEED = {s.seed}",
    ]
    if s.data == "dlai-circles":
        lines += ["x, y, x_test, y_test = (t.float() if t.is_floating_point() else t for t in dlai_data())"]
    elif s.data == "mnist":
        lines += [
            'train, test = data.load("mnist", split="train"), data.load("mnist", split="test")',
            'g = torch.Generator().manual_seed(derive_seed(SEED, "playground", "mnist") % 2**63)',
            f"i, i_test = torch.randperm(len(train.y), generator=g)[:{s.n_train}], "
            f"torch.randperm(len(test.y), generator=g)[:{s.n_test}]",
            "x, y, x_test, y_test = train.x[i], train.y[i], test.x[i_test], test.y[i_test]",
        ]
    else:
        lines += [
            f"options = dict(noise={s.noise!r}, seed=SEED, normalize=None)",
            f'train = data.load("{s.data}", split="train", n_samples={s.n_train}, **options)',
            f'test = data.load("{s.data}", split="test", n_samples={s.n_test}, **options)',
            "x, y, x_test, y_test = train.x, train.y, test.x, test.y",
        ]
    lines += [
        f"arms = {[str(a) for a in s.arms]!r}",
        "nets = []",
        "for arm in arms:",
        f'    net = models.build("{s.model_spec}", input_shape=tuple(x.shape[1:]), num_classes={outputs})',
        '    name, *options = arm.split(";")',
        '    opts = dict(o.split("=") for o in options)',
        '    if name.startswith("article:"):',
        f'        apply_preset(net, name.removeprefix("article:"), seed=SEED, act="{s.act}")',
        "    else:",
        '        std = opts.get("std")',
        '        scheme = name if std is None else {"class_name": type(initlab.get(name)).__name__,',
        '                                           "config": {"stddev": float(std)}}',
        "        initlab.initialize(net, scheme, seed=SEED, data=x[:256])",
        "    with torch.no_grad():",
        "        for p in net.parameters():",
        "            if p.dim() >= 2:",
        '                p.mul_(float(opts.get("scale", 1)))',
        "    nets.append(net)",
        f'settings = TrainSettings(optimizer="{optimizer}", lr={s.lr!r}{momentum}, loss="{loss}", '
        f"batch_size={s.batch or s.n_train})",
        "population = Population(nets, settings, seed=SEED)",
        "step = epoch = 0",
        "while step < STEPS:  # the same batches, in the same order, for every arm",
        '    g = torch.Generator().manual_seed(derive_seed(SEED, "batches", epoch) % 2**63)',
        f"    order = torch.randperm(len(y), generator=g) if {bool(s.batch)} else torch.arange(len(y))",
        "    for idx in order.split(settings.batch_size):",
        "        population.train_epoch([Batch(x[idx], y[idx])])",
        "        step += 1",
        "        if step == STEPS:",
        "            break",
        "    epoch += 1",
        "train_loss, train_acc = population.evaluate(x, y)",
        "test_loss, test_acc = population.evaluate(x_test, y_test)",
        "for i, arm in enumerate(arms):",
        '    print(f"{arm}: train cost {train_loss[i]:.4f}, accuracy {train_acc[i]:.3f}; '
        'test cost {test_loss[i]:.4f}, accuracy {test_acc[i]:.3f}")',
        "    model = population.export(i, nets[i])",
        f"    targets = y[:256].float() if {binary} else y[:256]",
        f'    print(initlab.diagnose(model, x[:256], targets=targets, loss="{loss}", jacobian=False))',
    ]
    return "\n".join(lines) + "\n"


def equivalents(setup: Setup) -> dict[str, str]:
    """``{"command": ..., "python": ...}`` for the page's copy buttons."""
    return {"command": as_command(setup), "python": as_python(setup)}
