{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{/* Names, labels and shared pieces of the drover chart's templates. */}}

{{- define "drover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name; 63 characters minus room for "-agent-checker". */}}
{{- define "drover.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "drover.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; pass (dict "ctx" $ "component" "exporter"). */}}
{{- define "drover.labels" -}}
helm.sh/chart: {{ include "drover.chart" .ctx }}
{{ include "drover.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: drover
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Labels that select one component's pods; never change them after install. */}}
{{- define "drover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drover.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a pod template: the selector labels plus the other
recommended app.kubernetes.io labels (no helm.sh/chart, so a chart version
bump alone does not restart pods); pass (dict "ctx" $ "component" C). */}}
{{- define "drover.podLabels" -}}
{{ include "drover.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: drover
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Files of the proxy-node DaemonSets under proxyNodes.stateDir; the
watcher writes, the agent-checker reads the agent state file. */}}
{{- define "drover.stateDir" -}}
{{- trimSuffix "/" .Values.proxyNodes.stateDir }}
{{- end }}
{{- define "drover.agentStateDir" -}}
{{- printf "%s/agent-checker" (include "drover.stateDir" .) }}
{{- end }}

{{- define "drover.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "drover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-exporter" (include "drover.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the Consul ACL token (checked: one source, one name). */}}
{{- define "drover.consulTokenSecret" -}}
{{- $t := .Values.consul.token }}
{{- if $t.create }}
{{- if not $t.value }}
{{- fail "consul.token.create is true but consul.token.value is empty" }}
{{- end }}
{{- printf "%s-consul-token" (include "drover.fullname" .) }}
{{- else }}
{{- required "consul.token.existingSecret is required unless consul.token.create is true or consul.token.enabled is false" $t.existingSecret }}
{{- end }}
{{- end }}

{{/* Mount path of the token Secret; the file is <dir>/token. */}}
{{- define "drover.consulTokenDir" -}}
/etc/drover/consul
{{- end }}

{{/* Volume projecting the token key of a Secret to the file "token". */}}
{{- define "drover.consulTokenVolume" -}}
- name: consul-token
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      - key: {{ .ctx.Values.consul.token.key }}
        path: token
{{- end }}

{{/* Environment shared by the programs that talk to Consul; pass (dict "ctx" $ "addr" ADDR). */}}
{{- define "drover.consulEnv" -}}
- name: DROVER_CONSUL_ADDR
  value: {{ .addr | quote }}
{{- if .ctx.Values.consul.token.enabled }}
- name: DROVER_CONSUL_TOKEN_FILE
  value: {{ printf "%s/token" (include "drover.consulTokenDir" .ctx) | quote }}
{{- end }}
- name: DROVER_KV_PREFIX
  value: {{ .ctx.Values.kvPrefix | quote }}
- name: DROVER_LOG_LEVEL
  value: {{ .ctx.Values.logLevel | quote }}
- name: DROVER_LOG_FORMAT
  value: {{ .ctx.Values.logFormat | quote }}
{{- end }}

{{/* Container security context: no root fs writes, no capabilities. */}}
{{- define "drover.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* HTTP probes on the metrics port; pass .Values.probes (timings). */}}
{{- define "drover.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  {{- toYaml .liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  {{- toYaml .readiness | nindent 2 }}
{{- end }}

{{/* Checks of values that a schema cannot express well. */}}
{{- define "drover.validate" -}}
{{- if not (regexMatch "^[A-Za-z0-9._-]{1,63}$" (toString .Values.cluster)) }}
{{- fail (printf "cluster %q: want 1-63 characters of [A-Za-z0-9._-]" (toString .Values.cluster)) }}
{{- end }}
{{- if or (hasPrefix "/" .Values.kvPrefix) (not .Values.kvPrefix) }}
{{- fail (printf "kvPrefix %q: must be non-empty and must not start with /" .Values.kvPrefix) }}
{{- end }}
{{- if not (has .Values.logLevel (list "debug" "info" "warn" "warning" "error")) }}
{{- fail (printf "logLevel %q: want debug, info, warn or error" .Values.logLevel) }}
{{- end }}
{{- end }}
