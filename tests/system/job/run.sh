#!/bin/sh
# The job (`mode: job`) of the whole-system scenarios: the stand-in runs this script as the
# image's program; on a real cluster it is the image built from the Dockerfile beside it.
# Its options arrive as FAAS_OPTION_* variables; `lines=N` prints N rows, `days=13` fails with
# exit code 13 and `days=0` sleeps past any test timeout; what it writes to $FAAS_OUTPUT (the container's
# termination message in a cluster) is the run's output.
echo "report for ${FAAS_OPTION_DAYS} days (run ${FAAS_RUN_ID}, attempt ${FAAS_ATTEMPT}, ${FAAS_TRIGGER})"
i=1
while [ "$i" -le "${FAAS_OPTION_LINES:-0}" ]; do echo "row $i"; i=$((i + 1)); done
case "${FAAS_OPTION_DAYS}" in
  13) echo "unlucky" >&2; exit 13 ;;
  0) echo "sleeping"; sleep 120 ;;
esac
printf '{"days": %s}' "${FAAS_OPTION_DAYS}" > "${FAAS_OUTPUT}"
