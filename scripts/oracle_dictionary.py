"""Rule oracle_dictionary: pool each instrument's training bases (folder labels) and cap them."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

from avsep.bases import NMFConfig, bases_params, read_bases
from avsep.dataset import read_manifest
from avsep.dictionary import pool_bases, reduce_bases, write_dictionaries
from avsep.logs import script_log
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    expect = bases_params(STFTConfig(**p.expect["stft"]), NMFConfig(**p.expect["nmf"]))
    manifest = read_manifest(snakemake.input.manifest)
    label = dict(zip(manifest["video_id"], manifest["labels"]))
    by_label = {}
    for path in snakemake.input.bases:
        video_id = Path(path).stem
        bases, _ = read_bases(path, expect=expect)
        by_label.setdefault(label[video_id], []).append((video_id, bases.W, bases.active, bases.basis_energy))
    dictionaries = {}
    for instrument, files in sorted(by_label.items()):
        pool = pool_bases(files)
        dictionaries[instrument] = reduce_bases(
            pool, p.dictionary["max_bases"], method=p.dictionary["reduce"], seed=p.dictionary["seed"]
        )
        log.info("%s: %d pooled bases -> %d", instrument, pool.W.shape[1], dictionaries[instrument].W.shape[1])
    params = {**expect, **{f"dictionary_{k}": v for k, v in p.dictionary.items()}, "kind": "oracle"}
    write_dictionaries(snakemake.output[0], dictionaries, params)
