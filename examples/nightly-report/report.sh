#!/bin/sh
# A nightly report as a faas job (`mode: job`): the platform runs this script once per run,
# at the schedule's fire time or by hand, with the run's options as FAAS_OPTION_* variables.
# Everything it prints is the run's log (`faas runs logs ID`); its exit code decides the run;
# what it writes to $FAAS_OUTPUT is the run's output.
set -eu
echo "report run ${FAAS_RUN_ID:-by hand} (${FAAS_TRIGGER:-manual}, attempt ${FAAS_ATTEMPT:-1})"
echo "scope: ${FAAS_OPTION_SCOPE}, recipients: ${FAAS_OPTION_RECIPIENTS}"
rows=0
for day in 1 2 3; do
  rows=$((rows + day * 10))
  echo "day ${day}: ${rows} rows so far"
done
if [ "${FAAS_OPTION_DRY_RUN}" = true ]; then
  echo "dry run: report not sent"
else
  echo "report sent to ${FAAS_OPTION_RECIPIENTS}"
fi
printf '{"scope": "%s", "rows": %s}\n' "${FAAS_OPTION_SCOPE}" "${rows}" > "${FAAS_OUTPUT}"
