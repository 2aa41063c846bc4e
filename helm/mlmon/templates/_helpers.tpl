{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "mlmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: <release>-<chart> unless the release already contains it. */}}
{{- define "mlmon.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the fullname plus a suffix, kept within 63 characters. */}}
{{- define "mlmon.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "mlmon.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "mlmon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mlmon.labels" -}}
helm.sh/chart: {{ include "mlmon.chart" . }}
{{ include "mlmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlmon
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the monitored pods: the chart's own pods (mode=pod) or the pods
     the sidecar patch labelled (mode=sidecarOnly). */}}
{{- define "mlmon.podSelectorLabels" -}}
{{- if eq .Values.mode "sidecarOnly" -}}
{{ .Values.sidecarOnly.podLabel }}: {{ include "mlmon.fullname" . }}
{{- else -}}
{{ include "mlmon.selectorLabels" . }}
{{- end -}}
{{- end -}}

{{- define "mlmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlmon.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference from {repository, tag, digest}; args: (list image defaultTag). */}}
{{- define "mlmon.image" -}}
{{- $image := index . 0 -}}
{{- $defaultTag := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (toString (default $defaultTag $image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "mlmon.configMapName" -}}
{{- default (include "mlmon.fullname" .) .Values.mlmon.existingConfigMap -}}
{{- end -}}

{{- define "mlmon.configKey" -}}
{{- if .Values.mlmon.existingConfigMap -}}
{{- .Values.mlmon.existingConfigMapKey -}}
{{- else -}}
config.yaml
{{- end -}}
{{- end -}}

{{/* File names of the baselines to load, in a stable order. */}}
{{- define "mlmon.baselineFiles" -}}
{{- $b := .Values.mlmon.baselines -}}
{{- $files := list -}}
{{- range $name := keys $b.inline | sortAlpha -}}
{{- $files = append $files $name -}}
{{- end -}}
{{- range $b.files -}}
{{- $files = append $files . -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}

{{- define "mlmon.baselineDir" -}}/var/lib/mlmon/baselines{{- end -}}

{{/* The generated mlmon config.yaml (SPEC section 1). */}}
{{- define "mlmon.config" -}}
{{- $cfg := deepCopy (default (dict) .Values.mlmon.config) -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.mlmon.ports.proxy)) -}}
{{- $_ = set $cfg "admin_listen" (printf "0.0.0.0:%d" (int .Values.mlmon.ports.admin)) -}}
{{- if not (hasKey $cfg "upstream") -}}
{{- $_ = set $cfg "upstream" (printf "http://127.0.0.1:%d" (int .Values.model.port)) -}}
{{- end -}}
{{- if .Values.mlmon.fleetBins -}}
{{- $drift := default (dict) (get $cfg "drift") -}}
{{- if not (hasKey $drift "fleet_bins") -}}
{{- $_ = set $drift "fleet_bins" .Values.mlmon.fleetBins -}}
{{- $_ = set $cfg "drift" $drift -}}
{{- end -}}
{{- end -}}
{{- $files := include "mlmon.baselineFiles" . | fromJsonArray -}}
{{- if $files -}}
{{- $baseline := default (dict) (get $cfg "baseline") -}}
{{- $paths := default (list) (get $baseline "files") -}}
{{- range $files -}}
{{- $paths = append $paths (printf "%s/%s" (include "mlmon.baselineDir" $) .) -}}
{{- end -}}
{{- $_ = set $baseline "files" $paths -}}
{{- $_ = set $cfg "baseline" $baseline -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Hash that changes whenever mounted configuration changes, to roll the pods. */}}
{{- define "mlmon.configChecksum" -}}
{{- $parts := list (include "mlmon.config" .) (toJson .Values.mlmon.baselines) .Values.mlmon.existingConfigMap .Values.mlmon.adminToken.value -}}
{{- join "\n---\n" $parts | sha256sum -}}
{{- end -}}

{{- define "mlmon.adminTokenSecret" -}}
{{- if .Values.mlmon.adminToken.existingSecret -}}
{{- .Values.mlmon.adminToken.existingSecret -}}
{{- else if or .Values.mlmon.adminToken.value .Values.mlmon.adminToken.generate -}}
{{- include "mlmon.suffixed" (list . "admin") -}}
{{- end -}}
{{- end -}}

{{/* The mlmon container (one list item, without the leading dash). */}}
{{- define "mlmon.container" -}}
name: {{ .Values.mlmon.name }}
image: {{ include "mlmon.image" (list .Values.mlmon.image .Chart.AppVersion) | quote }}
imagePullPolicy: {{ .Values.mlmon.image.pullPolicy }}
{{- if include "mlmon.native" . }}
restartPolicy: Always
{{- end }}
args:
  - serve
  - --config
  - /etc/mlmon/{{ include "mlmon.configKey" . }}
{{- with .Values.mlmon.extraArgs }}
{{- toYaml . | nindent 2 }}
{{- end }}
ports:
  - name: proxy
    containerPort: {{ int .Values.mlmon.ports.proxy }}
    protocol: TCP
  - name: metrics
    containerPort: {{ int .Values.mlmon.ports.admin }}
    protocol: TCP
{{- $secret := include "mlmon.adminTokenSecret" . }}
{{- if or $secret .Values.mlmon.env }}
env:
{{- if $secret }}
  - name: MLMON_ADMIN__TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ if .Values.mlmon.adminToken.existingSecret }}{{ .Values.mlmon.adminToken.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}
{{- with .Values.mlmon.env }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- with .Values.mlmon.envFrom }}
envFrom:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.startupProbe }}
startupProbe:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.livenessProbe }}
livenessProbe:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.readinessProbe }}
readinessProbe:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.lifecycle }}
lifecycle:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.resources }}
resources:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.mlmon.securityContext }}
securityContext:
{{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: mlmon-config
    mountPath: /etc/mlmon
    readOnly: true
{{- if include "mlmon.baselineVolume" . }}
  - name: mlmon-baselines
    mountPath: {{ include "mlmon.baselineDir" . }}
    readOnly: true
{{- end }}
  - name: mlmon-tmp
    mountPath: /tmp
{{- with .Values.mlmon.extraVolumeMounts }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The baselines volume source, or nothing when no baseline is configured. */}}
{{- define "mlmon.baselineVolume" -}}
{{- $b := .Values.mlmon.baselines -}}
{{- if $b.inline -}}
configMap:
  name: {{ include "mlmon.suffixed" (list . "baselines") }}
{{- else if $b.existingConfigMap -}}
configMap:
  name: {{ $b.existingConfigMap }}
{{- else if $b.existingSecret -}}
secret:
  secretName: {{ $b.existingSecret }}
{{- end -}}
{{- end -}}

{{/* The volumes the mlmon container mounts (list items). */}}
{{- define "mlmon.volumes" -}}
- name: mlmon-config
  configMap:
    name: {{ include "mlmon.configMapName" . }}
{{- with include "mlmon.baselineVolume" . }}
- name: mlmon-baselines
{{- . | nindent 2 }}
{{- end }}
- name: mlmon-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* "true" when mlmon runs as a native sidecar. A pod without a model container
     (model.enabled=false) has mlmon as its only, regular, container. */}}
{{- define "mlmon.native" -}}
{{- if and .Values.sidecar.native (or .Values.model.enabled (eq .Values.mode "sidecarOnly")) -}}
true
{{- end -}}
{{- end -}}

{{/* Pod annotations for annotation-based Prometheus discovery. */}}
{{- define "mlmon.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.mlmon.ports.admin | int | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{/* mode=sidecarOnly: strategic-merge patch adding mlmon to sidecarOnly.targetName. */}}
{{- define "mlmon.sidecarPatch" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.sidecarOnly.targetName }}
spec:
  template:
    metadata:
      labels:
        {{ .Values.sidecarOnly.podLabel }}: {{ include "mlmon.fullname" . }}
      annotations:
        mlmon.io/config-checksum: {{ include "mlmon.configChecksum" . }}
        {{- if .Values.metrics.podAnnotations }}
        {{- include "mlmon.scrapeAnnotations" . | nindent 8 }}
        {{- end }}
    spec:
      {{- if include "mlmon.native" . }}
      initContainers:
      {{- else }}
      containers:
      {{- end }}
        {{- include "mlmon.container" . | indent 2 | trim | printf "- %s" | nindent 8 }}
      volumes:
        {{- include "mlmon.volumes" . | nindent 8 }}
{{- end -}}
