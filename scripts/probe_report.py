"""Rule probe_report: every audio probe scored on the test solo clips, the mixtures, the
ideal ratio mask's tracks and every method's tracks (avsep.probe.predict, avsep.probe.scores):
the solo clips labelled here, the mixtures' tracks gathered from probe_mixture's tables."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import pandas as pd
import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import atomic_path, write_table
from avsep.logs import progress_logger, script_log
from avsep.probe.predict import load_probes, predict_clips, read_predictions, solo_tracks
from avsep.probe.scores import confusion_panels, probe_accuracy_table
from avsep.report.plots import plot_confusions

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    device = pick_device(p.device)
    inputs = snakemake.input
    probes, miml = load_probes(inputs.probes, miml=inputs.miml if "miml" in inputs.keys() else None, stft=p.stft,
                               nmf=p.nmf, device=device)
    manifest = read_manifest(inputs.manifest)
    label_of = dict(zip(manifest["video_id"], manifest["labels"]))
    sr = next(iter(probes.values())).feature_params["sample_rate"]
    progress = progress_logger(log, "test solo videos named")
    solos = []
    for k, track in enumerate(solo_tracks(inputs.solo, label_of)):
        solos.append(predict_clips(probes, [track], sr, silence_db=p.silence_db, miml=miml, device=device))
        progress(k + 1, len(inputs.solo))
    predictions = pd.concat([*solos, *map(read_predictions, inputs.predictions)], ignore_index=True)
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
