"""Rule probe_report: every audio probe scored on the test solo clips, the mixtures, the
ideal ratio mask's tracks and every method's tracks (avsep.probe_scores)."""

from pathlib import Path

import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.evaluate import method_estimates
from avsep.files import atomic_path, read_wav, write_table
from avsep.logs import progress_logger, script_log
from avsep.mixtures import read_item
from avsep.separation import read_separation
from avsep.plots import plot_confusions
from avsep.probe import load_probe
from avsep.probe_scores import predict_clips, probe_accuracy_table
from avsep.vision import confusion_matrix

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    device = pick_device(p.device)
    probes = {Path(f).stem: load_probe(f) for f in snakemake.input.probes}
    miml = None
    if any(probe.feature == "miml" for probe in probes.values()):
        from avsep.bases import NMFConfig
        from avsep.miml import load_model
        from avsep.transforms import STFTConfig

        model, _ = load_model(snakemake.input.miml, device)
        miml = (model, STFTConfig(**p.stft), NMFConfig(**p.nmf))
    manifest = read_manifest(snakemake.input.manifest)
    label = dict(zip(manifest["video_id"], manifest["labels"]))

    def tracks():
        """(input, item, instrument, audio, reference) of every track to name."""
        for path in snakemake.input.solo:
            vid = Path(path).stem
            yield "solo", vid, label[vid], read_wav(path)[0], None
        # results/separated/<method>/<item>
        separated = {(Path(f).parent.name, Path(f).name): f for f in snakemake.input.separated}
        for item_dir in map(Path, snakemake.input.mixtures):
            meta, mixture, _, stems, sides = read_item(item_dir)
            for inst, stem in stems.items():
                yield "mixture", meta["mix_id"], inst, mixture, stem
            for method in p.methods:
                _, own = read_separation(separated[(method, meta["mix_id"])])
                estimates, _ = method_estimates(mixture, sides, own)
                for inst, stem in stems.items():
                    yield method, meta["mix_id"], inst, estimates[inst], stem

    n_tracks = len(snakemake.input.solo) + len(snakemake.input.mixtures) * (len(p.methods) + 1) * 2
    progress = progress_logger(log, "tracks named")

    def counted():
        for k, track in enumerate(tracks()):
            yield track
            progress(k + 1, n_tracks)

    sr = next(iter(probes.values())).feature_params["sample_rate"]
    predictions = predict_clips(probes, counted(), sr, silence_db=p.silence_db, miml=miml, device=device)
    table = probe_accuracy_table(predictions, p.methods, seed=p.seed)
    write_table(snakemake.output.predictions, predictions)
    write_table(snakemake.output.table, table)
    # The independent probe's confusions: on the test solos, and on the last method's tracks.
    main = probes[p.main]
    index = {n: k for k, n in enumerate(main.label_names)}
    panels = []
    for input_name in dict.fromkeys(["solo", p.methods[-1]]):
        rows = predictions[(predictions["feature"] == main.feature) & (predictions["probe"] == main.kind)
                           & (predictions["input"] == input_name)]
        if len(rows):
            cm = confusion_matrix(rows["instrument"].map(index).to_numpy(), rows["predicted"].map(index).to_numpy(),
                                  len(index))
            panels.append((cm, f"{p.main} on {input_name} clips, accuracy {rows['correct'].mean():.3f}"))
    with atomic_path(snakemake.output.confusion) as tmp:
        plot_confusions(panels, main.label_names, tmp)
    for row in table.itertuples():
        log.info("%s %s on %s: %.3f [%.3f, %.3f] over %d clips", row.feature, row.probe, row.input, row.acc,
                 row.acc_lo, row.acc_hi, row.clips)
