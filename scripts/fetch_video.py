"""Rule fetch_video: one video of the fetch plan into dataset.root (avsep/fetch.py), and its
report row in results/fetch/videos/<id>.tsv. A video that cannot be had gives a row with its
status and reason, never a failed job."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import pandas as pd

from avsep.fetch import REPORT_COLUMNS, FetchItem, fetch_video
from avsep.files import write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    item = FetchItem(**{**p.item, "instruments": tuple(p.item["instruments"])})
    f = p.fetch
    row = fetch_video(item, p.root, url_template=f["url"], max_height=f["max_height"], selector=f["format"],
                      clip_start=f["clip"]["start"], clip_seconds=f["clip"]["seconds"], retries=f["retries"],
                      backoff_seconds=f["backoff_seconds"])
    log.info("%s %s: %s%s (%d bytes, %.1f s, %d attempt(s))", item.video_id, item.category, row["status"],
             f" - {row['reason']}" if row["reason"] else "", row["bytes"], row["seconds"], row["attempts"])
    write_table(snakemake.output[0], pd.DataFrame([row], columns=REPORT_COLUMNS))
