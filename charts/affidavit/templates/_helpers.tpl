{{/* Helpers: every one is named affidavit.<thing>. */}}

{{- define "affidavit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "affidavit.fullname" -}}
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

{{- define "affidavit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "affidavit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "affidavit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "affidavit.labels" -}}
helm.sh/chart: {{ include "affidavit.chart" . }}
{{ include "affidavit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: affidavit
{{- end -}}

{{- define "affidavit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "affidavit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "affidavit.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Names the operator and the webhook agree on (fixed: the webhook reads them by name). */}}
{{- define "affidavit.tlsSecretName" -}}affidavit-webhook-tls{{- end -}}
{{- define "affidavit.indexConfigMapName" -}}affidavit-policy-index{{- end -}}
{{- define "affidavit.stateConfigMapName" -}}affidavit-operator-state{{- end -}}
{{- define "affidavit.certDir" -}}/var/run/affidavit/certs{{- end -}}
{{- define "affidavit.dataDir" -}}/var/lib/affidavit{{- end -}}

{{- define "affidavit.excludedNamespaces" -}}
{{- $ns := list .Release.Namespace "kube-system" -}}
{{- range .Values.webhook.excludeNamespaces -}}{{- $ns = append $ns . -}}{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/* Environment shared by both containers. */}}
{{- define "affidavit.commonEnv" -}}
- name: AFFIDAVIT_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: AFFIDAVIT_CLUSTER_NAME
  value: {{ .Values.clusterName | quote }}
- name: AFFIDAVIT_REGION
  value: {{ .Values.region | quote }}
- name: AFFIDAVIT_EXCEPTION_MAX_DAYS
  value: {{ .Values.exceptions.maxDays | quote }}
{{- if eq .Values.ledger.type "postgres" }}
- name: AFFIDAVIT_LEDGER
  valueFrom:
    secretKeyRef:
      name: {{ required "ledger.postgres.existingSecret is required when ledger.type=postgres" .Values.ledger.postgres.existingSecret }}
      key: {{ .Values.ledger.postgres.secretKey }}
{{- else }}
- name: AFFIDAVIT_LEDGER
  value: {{ printf "sqlite:///%s/ledger.db" (include "affidavit.dataDir" .) | quote }}
{{- end }}
{{- end -}}

{{- define "affidavit.validate" -}}
{{- if eq .Release.Namespace "default" -}}
{{- fail "install Affidavit into a namespace of its own (-n affidavit-system --create-namespace): the release namespace is never judged, so every workload in \"default\" would run unjudged" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (ne .Values.ledger.type "postgres") -}}
{{- fail "replicaCount > 1 needs ledger.type=postgres: each replica would otherwise keep its own SQLite ledger" -}}
{{- end -}}
{{- end -}}

{{/* Client-certificate authentication of the kube-apiserver (webhook.clientAuth). */}}
{{- define "affidavit.clientCADir" -}}/var/run/affidavit/client-ca{{- end -}}

{{- define "affidavit.validateClientAuth" -}}
{{- with .Values.webhook.clientAuth -}}
{{- if .enabled -}}
{{- if and .caBundle .existingSecret -}}
{{- fail "webhook.clientAuth: give caBundle or existingSecret, not both" -}}
{{- end -}}
{{- if not (or .caBundle .existingSecret) -}}
{{- fail "webhook.clientAuth.enabled needs caBundle (PEM) or existingSecret: the CA that signs the kube-apiserver's webhook client certificate" -}}
{{- end -}}
{{- if not .allowedNames -}}
{{- fail "webhook.clientAuth.enabled needs allowedNames: the subject CN (or a DNS SAN) of the kube-apiserver's webhook client certificate" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "affidavit.clientAuthEnv" -}}
{{- if .Values.webhook.clientAuth.enabled }}
- name: AFFIDAVIT_CLIENT_CA
  value: {{ printf "%s/ca.crt" (include "affidavit.clientCADir" .) | quote }}
- name: AFFIDAVIT_CLIENT_NAMES
  value: {{ join " " .Values.webhook.clientAuth.allowedNames | quote }}
{{- end }}
{{- end -}}

{{- define "affidavit.clientAuthMount" -}}
{{- if .Values.webhook.clientAuth.enabled }}
- {name: client-ca, mountPath: {{ include "affidavit.clientCADir" . }}, readOnly: true}
{{- end }}
{{- end -}}

{{- define "affidavit.clientAuthVolume" -}}
{{- with .Values.webhook.clientAuth }}
{{- if .enabled }}
- name: client-ca
  {{- if .existingSecret }}
  secret:
    secretName: {{ .existingSecret }}
    items: [{key: {{ .secretKey }}, path: ca.crt}]
  {{- else }}
  configMap:
    name: {{ include "affidavit.fullname" $ }}-client-ca
    items: [{key: ca.crt, path: ca.crt}]
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The SQLite ledger's PersistentVolumeClaim name, or "" when the ledger is on an emptyDir. */}}
{{- define "affidavit.ledgerClaim" -}}
{{- $p := .Values.ledger.sqlite.persistence -}}
{{- if and (eq .Values.ledger.type "sqlite") $p.enabled -}}
{{- default (printf "%s-ledger" (include "affidavit.fullname" .)) $p.existingClaim -}}
{{- end -}}
{{- end -}}

{{/* Signed ledger checkpoints (ledger.signingKey, ledger.checkpoints). */}}
{{- define "affidavit.ledgerKeyDir" -}}/var/run/affidavit/ledger-key{{- end -}}

{{- define "affidavit.checkpointConfigMapName" -}}
{{- $cm := .Values.ledger.checkpoints.configMap -}}
{{- if and .Values.ledger.signingKey.existingSecret $cm.enabled -}}
{{- default (printf "%s-ledger-checkpoints" (include "affidavit.fullname" .)) $cm.name -}}
{{- end -}}
{{- end -}}

{{- define "affidavit.ledgerKeyEnv" -}}
{{- if .Values.ledger.signingKey.existingSecret }}
- name: AFFIDAVIT_LEDGER_KEY
  value: {{ printf "%s/ledger.key" (include "affidavit.ledgerKeyDir" .) | quote }}
- name: AFFIDAVIT_CHECKPOINT_DIR
  value: {{ printf "%s/checkpoints" (include "affidavit.dataDir" .) | quote }}
- name: AFFIDAVIT_CHECKPOINT_EVERY
  value: {{ .Values.ledger.checkpoints.every | quote }}
- name: AFFIDAVIT_CHECKPOINT_INTERVAL
  value: {{ .Values.ledger.checkpoints.intervalSeconds | quote }}
{{- with include "affidavit.checkpointConfigMapName" . }}
- name: AFFIDAVIT_CHECKPOINT_CONFIGMAP
  value: {{ printf "%s/%s" $.Release.Namespace . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "affidavit.ledgerKeyMount" -}}
{{- if .Values.ledger.signingKey.existingSecret }}
- {name: ledger-key, mountPath: {{ include "affidavit.ledgerKeyDir" . }}, readOnly: true}
{{- end }}
{{- end -}}

{{- define "affidavit.ledgerKeyVolume" -}}
{{- with .Values.ledger.signingKey }}
{{- if .existingSecret }}
# Readable by the Pod's group (fsGroup) only; mounted into the webhook container only.
- name: ledger-key
  secret:
    secretName: {{ .existingSecret }}
    defaultMode: 0440
    items: [{key: {{ .secretKey }}, path: ledger.key}]
{{- end }}
{{- end }}
{{- end -}}

{{/* extraEnv, for both containers. */}}
{{- define "affidavit.extraEnv" -}}
{{- with .Values.extraEnv -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/* affinity: the user's, plus hostname anti-affinity between replicas (podAntiAffinity). */}}
{{- define "affidavit.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) -}}
{{- if and .Values.podAntiAffinity (not $affinity.podAntiAffinity) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "affidavit.selectorLabels" . | fromYaml)) -}}
{{- if eq .Values.podAntiAffinity "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- if $affinity -}}
{{- toYaml $affinity -}}
{{- end -}}
{{- end -}}

{{/* Annotations of the webhook configurations: cert-manager injects the caBundle when it
     issues the serving certificate. */}}
{{- define "affidavit.webhookConfigurationAnnotations" -}}
{{- if .Values.certManager.enabled -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "affidavit.fullname" .) }}
{{- end -}}
{{- end -}}
