#!/bin/sh
# A nightly report as a faas function: a shell script (`mode: cgi`) that the platform's
# scheduler calls at the schedule's fire time with the schedule's payload on stdin. The run,
# its output and these log lines are recorded: `faas runs nightly-report`, `faas runs show ID`.
echo "report run ${HTTP_X_FAAS_RUN_ID:-by hand} (${HTTP_X_FAAS_TRIGGER:-http}, attempt ${HTTP_X_FAAS_ATTEMPT:-1})" >&2
echo "Content-Type: text/plain"
echo
echo "nightly report for ${HTTP_X_FAAS_SCHEDULED_TIME:-now}"
if [ "${CONTENT_LENGTH:-0}" -gt 0 ]; then
  echo "input: $(cat)"
fi
