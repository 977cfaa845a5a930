{{/* The name of the release's objects. */}}
{{- define "faas.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "faas.meta" -}}
app.kubernetes.io/part-of: faas
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "faas.labels" -}}
{{ include "faas.meta" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the controller's objects: the common ones and its selector. */}}
{{- define "faas.controller.labels" -}}
{{ include "faas.meta" . }}
{{ include "faas.controller.selector" . }}
{{- end -}}

{{- define "faas.controller.selector" -}}
app.kubernetes.io/name: faas-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the gateway's objects: the common ones and its selector. */}}
{{- define "faas.gateway.labels" -}}
{{ include "faas.meta" . }}
{{ include "faas.gateway.selector" . }}
{{- end -}}

{{- define "faas.gateway.selector" -}}
app.kubernetes.io/name: faas-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The gateway Service's public port: the one the TargetGroupBinding's serviceRef names (the AWS
Load Balancer Controller registers the pods' IPs with the container port it targets, `http`).
*/}}
{{- define "faas.gateway.publicPort" -}}80{{- end -}}

{{/*
The gateway pod's grace period: the drain delay (/readyz fails, requests are still served while
the ALB deregisters the target), then the shutdown grace for in-flight requests, then a margin
for the process to exit before the kubelet's SIGKILL.
*/}}
{{- define "faas.gateway.terminationGracePeriodSeconds" -}}
{{- add .Values.gateway.drainDelaySeconds .Values.gateway.shutdownGraceSeconds 5 -}}
{{- end -}}

{{/* <registry>/<name>:<tag> for an image name. */}}
{{- define "faas.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $tag := default $root.Chart.AppVersion $root.Values.image.tag -}}
{{- if $root.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $root.Values.image.registry) $name $tag -}}
{{- else -}}
{{- printf "%s:%s" $name $tag -}}
{{- end -}}
{{- end -}}

{{/* Scheduling of the platform's own pods: the system node group. */}}
{{- define "faas.systemScheduling" -}}
{{- with .Values.nodeGroups.system }}
{{- if .capacityType }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: eks.amazonaws.com/capacityType, operator: In, values: [{{ .capacityType | quote }}]}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The container security context every platform container runs with. */}}
{{- define "faas.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* `key=value,key=value` from a map, as the controller reads it. */}}
{{- define "faas.nodeLabels" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The host names the platform answers on: routing.platformHosts and the host of
controller.publicUrl, comma-separated (FAAS_PLATFORM_HOSTS of the gateway and the controller). */}}
{{- define "faas.platformHosts" -}}
{{- $hosts := .Values.routing.platformHosts | default list -}}
{{- with .Values.controller.publicUrl -}}
{{- $hosts = append $hosts (regexReplaceAll ":[0-9]+$" (urlParse .).host "") -}}
{{- end -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{/* The Secret holding the platform token: the controller shows it when its cron calls a
     function through the gateway's admin listener, which believes run headers only then. */}}
{{- define "faas.platformTokenSecret" -}}
{{ include "faas.fullname" . }}-platform-token
{{- end -}}

{{/* Where the controller reaches the gateway's admin listener (its Service). */}}
{{- define "faas.gateway.adminUrl" -}}
http://{{ include "faas.fullname" . }}-gateway.{{ .Release.Namespace }}.{{ .Values.controller.serviceDomain }}:{{ .Values.gateway.ports.admin }}
{{- end -}}
