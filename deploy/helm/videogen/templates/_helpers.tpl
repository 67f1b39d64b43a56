{{- define "videogen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "videogen.fullname" -}}
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

{{- define "videogen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "videogen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "videogen.selector" -}}
app.kubernetes.io/name: {{ include "videogen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "videogen.secretName" -}}
{{- .Values.existingSecret | default (include "videogen.fullname" .) -}}
{{- end -}}

{{/* The port the web listens on: config.PORT, else the image's 8000. */}}
{{- define "videogen.port" -}}
{{- .Values.config.PORT | default "8000" | int -}}
{{- end -}}

{{/* The Host the probes send: the first of ALLOWED_HOSTS (the site refuses others). */}}
{{- define "videogen.probeHost" -}}
{{- $first := splitList "," (.Values.config.ALLOWED_HOSTS | default "localhost") | first | trim | trimPrefix "." -}}
{{- if or (eq $first "") (eq $first "*") -}}localhost{{- else -}}{{ $first }}{{- end -}}
{{- end -}}

{{- define "videogen.healthz" -}}
path: /healthz
port: http
httpHeaders:
  - name: Host
    value: {{ include "videogen.probeHost" . | quote }}
{{- end -}}

{{/*
A pod spec for one process of the image. Call with
(dict "root" $ "process" "web" "values" .Values.web "tag" .Values.image.tag "gpus" 0)
*/}}
{{- define "videogen.podSpec" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- if eq .process "migrate" }}
restartPolicy: Never
{{- else }}
terminationGracePeriodSeconds: {{ if eq .process "web" }}30{{ else }}120{{ end }}
{{- end }}
containers:
  - name: {{ .process }}
    image: "{{ $root.Values.image.repository }}:{{ .tag }}"
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: [{{ .process | quote }}]
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    envFrom:
      - configMapRef:
          name: {{ include "videogen.fullname" $root }}
      - secretRef:
          name: {{ include "videogen.secretName" $root }}
    {{- if or $root.Values.c2pa.existingSecret $root.Values.extraEnv }}
    env:
      {{- if $root.Values.c2pa.existingSecret }}
      - name: VIDEOGEN_C2PA_CERT
        value: /etc/videogen/c2pa/cert.pem
      - name: VIDEOGEN_C2PA_KEY
        value: /etc/videogen/c2pa/key.pem
      {{- end }}
      {{- with $root.Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- end }}
    {{- if eq .process "web" }}
    ports:
      - name: http
        containerPort: {{ include "videogen.port" $root }}
        protocol: TCP
    # Ready: /healthz answers 200 (`ok`, or `degraded` when only the workers are late); 503
    # while the database, broker or storage fails. Alive: the port answers, so a database
    # outage takes pods out of rotation without restarting them all.
    startupProbe:
      httpGet:
        {{- include "videogen.healthz" $root | nindent 8 }}
      periodSeconds: 2
      failureThreshold: 60
    readinessProbe:
      httpGet:
        {{- include "videogen.healthz" $root | nindent 8 }}
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    livenessProbe:
      tcpSocket:
        port: http
      periodSeconds: 20
      failureThreshold: 3
    {{- end }}
    resources:
      {{- $resources := deepCopy ($v.resources | default dict) -}}
      {{- if .gpus }}
      {{- $_ := set $resources "limits" (merge (dict "nvidia.com/gpu" .gpus) ($resources.limits | default dict)) }}
      {{- $_ := set $resources "requests" (merge (dict "nvidia.com/gpu" .gpus) ($resources.requests | default dict)) }}
      {{- end }}
      {{- toYaml $resources | nindent 6 }}
    volumeMounts:
      - name: data
        mountPath: /data
      - name: tmp
        mountPath: /tmp
      {{- if $root.Values.c2pa.existingSecret }}
      - name: c2pa
        mountPath: /etc/videogen/c2pa
        readOnly: true
      {{- end }}
      {{- if and .gpus $root.Values.gpuWorker.modelsClaim }}
      - name: models
        mountPath: /models
        readOnly: true
      {{- end }}
volumes:
  - name: data
    {{- if $root.Values.persistence.enabled }}
    persistentVolumeClaim:
      claimName: {{ $root.Values.persistence.existingClaim | default (printf "%s-data" (include "videogen.fullname" $root)) }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  - name: tmp
    emptyDir: {}
  {{- if $root.Values.c2pa.existingSecret }}
  - name: c2pa
    secret:
      secretName: {{ $root.Values.c2pa.existingSecret }}
      defaultMode: 0440
  {{- end }}
  {{- if and .gpus $root.Values.gpuWorker.modelsClaim }}
  - name: models
    persistentVolumeClaim:
      claimName: {{ $root.Values.gpuWorker.modelsClaim }}
      readOnly: true
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
