"""Rule probe_report: every audio probe scored on the test solo clips, the mixtures, the
ideal ratio mask's tracks and every method's tracks (avsep.probe.predict, avsep.probe.scores)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import atomic_path, write_table
from avsep.logs import progress_logger, script_log
from avsep.probe.features import load_miml_feature
from avsep.probe.model import load_probe
from avsep.probe.predict import predict_clips, report_tracks
from avsep.probe.scores import confusion_panels, probe_accuracy_table
from avsep.report.plots import plot_confusions

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    device = pick_device(p.device)
    probes = {Path(f).stem: load_probe(f) for f in snakemake.input.probes}
    miml = None
    if any(probe.feature == "miml" for probe in probes.values()):
        miml = load_miml_feature(snakemake.input.miml, p.stft, p.nmf, device)
    manifest = read_manifest(snakemake.input.manifest)
    tracks = report_tracks(snakemake.input.solo, snakemake.input.mixtures, snakemake.input.separated, p.methods,
                           dict(zip(manifest["video_id"], manifest["labels"])),
                           progress=progress_logger(log, "tracks named"))
    sr = next(iter(probes.values())).feature_params["sample_rate"]
    predictions = predict_clips(probes, tracks, sr, silence_db=p.silence_db, miml=miml, device=device)
    table = probe_accuracy_table(predictions, p.methods, seed=p.seed)
    write_table(snakemake.output.predictions, predictions)
    write_table(snakemake.output.table, table)
    # The independent probe's confusions: on the test solos, and on the last method's tracks.
    main = probes[p.main]
    with atomic_path(snakemake.output.confusion) as tmp:
        plot_confusions(confusion_panels(predictions, main, p.main, ["solo", p.methods[-1]]), main.label_names, tmp)
    for row in table.itertuples():
        log.info("%s %s on %s: %.3f [%.3f, %.3f] over %d clips", row.feature, row.probe, row.input, row.acc,
                 row.acc_lo, row.acc_hi, row.clips)
