{{/* Names, labels and the pieces every pod shares. */}}

{{- define "fabric.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-fabric, or the release alone when it already says fabric. */}}
{{- define "fabric.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fabric.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fabric.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fabric
{{- end }}

{{- define "fabric.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fabric.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The gateway pods' selector. */}}
{{- define "fabric.gatewaySelectorLabels" -}}
{{ include "fabric.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* A worker pool's selector; takes (dict "root" $ "pool" NAME). */}}
{{- define "fabric.workerSelectorLabels" -}}
{{ include "fabric.selectorLabels" .root }}
app.kubernetes.io/component: worker
fabric/pool: {{ .pool }}
{{- end }}

{{- define "fabric.gatewayName" -}}
{{- printf "%s-gateway" (include "fabric.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A worker pool's name; takes (dict "root" $ "pool" NAME). */}}
{{- define "fabric.workerName" -}}
{{- printf "%s-worker-%s" (include "fabric.fullname" .root) .pool | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fabric.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fabric.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fabric.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "fabric.resumeSecretName" -}}
{{- default (printf "%s-resume" (include "fabric.fullname" .)) .Values.resumeSecret.existingSecret }}
{{- end }}

{{- define "fabric.policyConfigMapName" -}}
{{- default (printf "%s-policy" (include "fabric.fullname" .)) .Values.auth.policy.existingConfigMap }}
{{- end }}

{{/* The worker pools turned on, each merged over workerDefaults, as JSON: {"pools": {NAME: {...}}}. */}}
{{- define "fabric.workerPools" -}}
{{- $pools := dict }}
{{- range $name, $pool := .Values.workers }}
{{- if and $pool (ne (toString $pool.enabled) "false") }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) }}
{{- fail (printf "workers.%s: a pool's name must be a DNS label" $name) }}
{{- end }}
{{- $_ := set $pools $name (mergeOverwrite (deepCopy $.Values.workerDefaults) (deepCopy $pool)) }}
{{- end }}
{{- end }}
{{- dict "pools" $pools | toJson }}
{{- end }}

{{/* NATS connection: URL, prefix, user and credentials. Takes (dict "root" $ "user" USER). */}}
{{- define "fabric.natsArgs" -}}
- --nats={{ join "," .root.Values.nats.urls }}
- --prefix={{ .root.Values.nats.prefix }}
{{- if .root.Values.nats.inboxPerUser }}
- --nats-inbox-prefix=_INBOX.{{ .user }}
{{- end }}
{{- if eq .root.Values.nats.auth.type "creds" }}
- --nats-creds=/etc/fabric/nats/{{ .user }}.creds
{{- end }}
{{- end }}

{{- define "fabric.natsEnv" -}}
{{- if eq .root.Values.nats.auth.type "password" }}
- name: FABRIC_NATS_USER
  value: {{ .user | quote }}
- name: FABRIC_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "nats.auth.existingSecret is required with nats.auth.type password" .root.Values.nats.auth.existingSecret }}
      key: {{ .user }}
{{- else if not (has .root.Values.nats.auth.type (list "creds" "none")) }}
{{- fail (printf "nats.auth.type %q: want password, creds or none" .root.Values.nats.auth.type) }}
{{- end }}
{{- end }}

{{- define "fabric.natsVolumeMounts" -}}
{{- if eq .Values.nats.auth.type "creds" }}
- name: nats-creds
  mountPath: /etc/fabric/nats
  readOnly: true
{{- end }}
{{- end }}

{{/* Only the user's own credentials file. Takes (dict "root" $ "user" USER). */}}
{{- define "fabric.natsVolumes" -}}
{{- if eq .root.Values.nats.auth.type "creds" }}
- name: nats-creds
  secret:
    secretName: {{ required "nats.auth.existingSecret is required with nats.auth.type creds" .root.Values.nats.auth.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .user }}.creds
        path: {{ .user }}.creds
{{- end }}
{{- end }}

{{/* OpenTelemetry. Takes (dict "root" $ "service" SUFFIX). */}}
{{- define "fabric.otelEnv" -}}
{{- with .root.Values.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
{{- with .protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with .sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with .samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "%s-%s" .serviceNamePrefix $.service | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME)"
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod. Takes the component's values. */}}
{{- define "fabric.podScheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Egress every pod needs: NATS, DNS, and the collector when traces are on. */}}
{{- define "fabric.egressBase" -}}
{{- $np := .Values.networkPolicy }}
# NATS.
- to:
    - podSelector:
        matchLabels:
          {{- toYaml $np.nats.podSelector | nindent 10 }}
      {{- with $np.nats.namespaceSelector }}
      namespaceSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - protocol: TCP
      port: {{ $np.nats.port }}
# DNS.
- to:
    - podSelector:
        matchLabels:
          {{- toYaml $np.dns.podSelector | nindent 10 }}
      {{- with $np.dns.namespaceSelector }}
      namespaceSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- if .Values.otel.endpoint }}
# The OpenTelemetry collector.
- to:
    - podSelector:
        matchLabels:
          {{- toYaml $np.otel.podSelector | nindent 10 }}
      {{- with $np.otel.namespaceSelector }}
      namespaceSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    {{- range $np.otel.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* The gateway's authentication files: the JWT secret and the route policy. */}}
{{- define "fabric.authVolumeMounts" -}}
{{- if .Values.auth.enabled }}
{{- if .Values.auth.jwt.secret.existingSecret }}
- name: jwt-secret
  mountPath: /etc/fabric/auth
  readOnly: true
{{- end }}
{{- if or .Values.auth.policy.existingConfigMap .Values.auth.policy.content }}
- name: policy
  mountPath: /etc/fabric/policy
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "fabric.authVolumes" -}}
{{- if .Values.auth.enabled }}
{{- if .Values.auth.jwt.secret.existingSecret }}
- name: jwt-secret
  secret:
    secretName: {{ .Values.auth.jwt.secret.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.auth.jwt.secret.key }}
        path: jwt-secret
{{- end }}
{{- if or .Values.auth.policy.existingConfigMap .Values.auth.policy.content }}
- name: policy
  configMap:
    name: {{ include "fabric.policyConfigMapName" . }}
    items:
      - key: {{ .Values.auth.policy.key }}
        path: {{ .Values.auth.policy.key }}
{{- end }}
{{- end }}
{{- end }}
