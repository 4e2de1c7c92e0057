"""A run's memory: its estimate from the configuration and what this machine has available (for the runner's
up-front check and the campaign's scheduler)."""

from __future__ import annotations

from smoacs.config import RunConfig
from smoacs.errors import ConfigError

#: Memory of a run besides its design tensors (interpreter, torch, predictor weights), GB.
BASE_MEMORY_GB = 0.6
#: Memory per candidate atom (graphs, activations and their gradients of CGCNN-size models), GB.
ATOM_MEMORY_GB = 0.35e-3
#: Extra memory of a run with the universal potential in the loop or a relaxation check, GB.
POTENTIAL_MEMORY_GB = 0.6


def atoms_per_cell(config: RunConfig) -> int:
    """Sites of a candidate: 5·n³ for generated n×n×n perovskites, else the template limit ``max_atoms``."""
    templates = config.templates
    return 5 * templates.supercell**3 if templates.kind == "perovskite" else templates.max_atoms


def estimate_memory_gb(config: RunConfig) -> float:
    """A run's peak memory, GB, from its mini-batch size and atoms per cell (measured: 256 five-atom cells ≈ 1 GB,
    32 cells of 135 atoms ≈ 2.1 GB); a potential in the loop adds :data:`POTENTIAL_MEMORY_GB`."""
    gb = BASE_MEMORY_GB + ATOM_MEMORY_GB * min(config.batch_size, config.candidates) * atoms_per_cell(config)
    if config.physics.enabled or config.evaluation.relax:
        gb += POTENTIAL_MEMORY_GB
    return gb


def available_memory_gb() -> float:
    """Memory available to new processes on this machine (``MemAvailable``), GB; 4 GB when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 4.0


def check_memory(config: RunConfig, available_gb: float | None = None) -> None:
    """ConfigError when the run's estimated memory exceeds what is available (``available_gb``, default this
    machine's): such a run would be killed by the OS part-way; say which settings make it smaller."""
    need, have = estimate_memory_gb(config), available_memory_gb() if available_gb is None else available_gb
    if need > have:
        raise ConfigError(
            f"this run needs ≈{need:.0f} GB ({min(config.batch_size, config.candidates)} candidates per mini-batch × "
            f"{atoms_per_cell(config)} atoms per cell), {have:.1f} GB are available: lower batch_size or "
            "templates.supercell"
        )
