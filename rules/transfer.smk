# Models from another run (transfer.run, avsep/transfer.py): each training rule's outputs are
# copied from that run, checked against this config and dataset, instead of being trained
# here. Included after the rules it replaces; a rule order makes the copy win.

import re

if TRANSFER_RUN:
    for _trained in TRANSFER_RULES:
        _outputs = [str(path) for path in getattr(rules, _trained).output]
        _wildcards = "".join(
            f"_{{{w}}}" for w in sorted(set(re.findall(r"{(\w+)", _outputs[0])))
        )

        rule:
            name:
                f"transfer_{_trained}"
            input:
                files=[os.path.join(TRANSFER_RUN, path) for path in _outputs],
                manifest=MANIFEST,
            output:
                _outputs,
            log:
                f"logs/transfer/{_trained}{_wildcards}.log",
            conda:
                "../envs/avsep.yaml"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            params:
                trained=_trained,
                instruments=lambda w: stage().instruments(),
                stft=STFT_PARAMS,
                nmf=NMF_PARAMS,
            script:
                "../scripts/transfer.py"

        workflow.ruleorder(f"transfer_{_trained}", _trained)
