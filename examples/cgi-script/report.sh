#!/bin/sh
# A shell script as a faas function (`mode: cgi`): one process per request, the request body on
# stdin, the CGI variables in the environment, the response on stdout.
echo "Content-Type: text/plain"
echo
echo "report for $REQUEST_METHOD $PATH_INFO${QUERY_STRING:+?$QUERY_STRING}"
echo "generated on $(uname -n) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ "${CONTENT_LENGTH:-0}" -gt 0 ]; then
  echo "input: $(cat)"
fi
