{{/* Names, labels and the pieces every Lumen pod shares. */}}

{{- define "lumen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lumen.fullname" -}}
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

{{/* Name of one component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "ingest"). */}}
{{- define "lumen.componentName" -}}
{{- printf "%s-%s" (include "lumen.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lumen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "lumen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lumen
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lumen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lumen.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lumen.componentLabels" -}}
{{ include "lumen.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lumen.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lumen.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lumen.secretName" -}}
{{- default (include "lumen.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "lumen.mongoSecretName" -}}
{{- default (include "lumen.fullname" .) .Values.mongo.existingSecret }}
{{- end }}

{{- define "lumen.mongoSecretKey" -}}
{{- if .Values.mongo.existingSecret }}{{ .Values.mongo.uriKey }}{{ else }}LUMEN_MONGO_URI{{ end }}
{{- end }}

{{/* Image reference of a component; the tag defaults to appVersion and `latest` is refused. */}}
{{- define "lumen.image" -}}
{{- $img := .root.Values.image }}
{{- $repo := printf "%s/%s%s" $img.registry $img.repositoryPrefix .component }}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- $tag := default .root.Chart.AppVersion $img.tag }}
{{- if eq $tag "latest" }}{{ fail "image.tag must name a release, not `latest`" }}{{ end }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{/* Environment every Lumen container gets: the ConfigMap, then the Mongo URI and Kafka password. */}}
{{- define "lumen.commonEnv" -}}
- name: LUMEN_MONGO_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "lumen.mongoSecretName" . }}
      key: {{ include "lumen.mongoSecretKey" . }}
{{- if or .Values.kafka.sasl.password .Values.kafka.sasl.existingSecret }}
- name: LUMEN_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if .Values.kafka.sasl.existingSecret }}
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
      {{- else }}
      name: {{ include "lumen.fullname" . }}
      key: LUMEN_KAFKA_SASL_PASSWORD
      {{- end }}
{{- end }}
{{- end }}

{{/* Extra settings of one component, from <component>.env. */}}
{{- define "lumen.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{- define "lumen.envFrom" -}}
- configMapRef:
    name: {{ include "lumen.fullname" . }}
{{- end }}

{{/* Volume mounts every Lumen container has: a writable /tmp and the optional CA bundles. */}}
{{- define "lumen.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/lumen/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.mongo.tls.caSecret }}
- name: mongo-ca
  mountPath: /etc/lumen/mongo-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "lumen.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: ca.crt
{{- end }}
{{- if .Values.mongo.tls.caSecret }}
- name: mongo-ca
  secret:
    secretName: {{ .Values.mongo.tls.caSecret }}
    items:
      - key: {{ .Values.mongo.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every component. Call with (dict "root" $ "component" "ingest"). */}}
{{- define "lumen.podSpecCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "lumen.serviceAccountName" $root }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range $root.Values.topologySpread.topologyKeys }}
  - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "lumen.selectorLabels" (dict "root" $root "component" $.component) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Pod template annotations: roll the pods when their configuration or secrets change. */}}
{{- define "lumen.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Where the services export traces: tracing.otlpEndpoint, else the release's Jaeger, else
     nothing (tracing off). */}}
{{- define "lumen.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint -}}
{{- .Values.tracing.otlpEndpoint -}}
{{- else if .Values.tracing.jaeger.enabled -}}
{{- printf "http://%s-jaeger:4317" (include "lumen.fullname" .) -}}
{{- end -}}
{{- end }}

{{/* Jaeger's query URL for Grafana: grafanaDatasources.jaegerUrl, else the release's Jaeger. */}}
{{- define "lumen.jaegerQueryUrl" -}}
{{- if .Values.grafanaDatasources.jaegerUrl -}}
{{- .Values.grafanaDatasources.jaegerUrl -}}
{{- else if .Values.tracing.jaeger.enabled -}}
{{- printf "http://%s-jaeger.%s:16686" (include "lumen.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end }}
