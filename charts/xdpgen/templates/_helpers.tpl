{{/*
Names are fixed rather than derived from the release name: the CRDs, ClusterRoles and the admission policy are
cluster-wide, so there is one xdpgen per cluster, and the names match the kustomize installation (config/default).
*/}}

{{/* The namespace of the manager and the agents' service account. */}}
{{- define "xdpgen.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* The image of the manager and the agents. */}}
{{- define "xdpgen.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The image of the node agents: agent.image's fields, each defaulting to the manager's. */}}
{{- define "xdpgen.agentImage" -}}
{{- $i := .Values.agent.image -}}
{{- printf "%s:%s" ($i.repository | default .Values.image.repository) ($i.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "xdpgen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: xdpgen
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of the manager's objects; the selector labels are those the kustomize installation uses. */}}
{{- define "xdpgen.managerSelectorLabels" -}}
app.kubernetes.io/name: xdpgen
app.kubernetes.io/component: manager
{{- end -}}

{{- define "xdpgen.managerLabels" -}}
{{ include "xdpgen.labels" . }}
{{ include "xdpgen.managerSelectorLabels" . }}
{{- end -}}

{{/* Labels of the agents' objects; the selector labels are those the kustomize installation (config/agent) uses. */}}
{{- define "xdpgen.agentSelectorLabels" -}}
app.kubernetes.io/name: xdpgen-agent
app.kubernetes.io/component: agent
{{- end -}}

{{- define "xdpgen.agentLabels" -}}
{{ include "xdpgen.labels" . }}
{{ include "xdpgen.agentSelectorLabels" . }}
{{- end -}}

{{/*
The release is stored in the namespace of `helm install -n`, which must exist before the chart's objects are
created. A chart that also creates that namespace collides with it: refuse early, with the way out.
*/}}
{{- define "xdpgen.checkNamespace" -}}
{{- if and .Values.namespace.create (eq (include "xdpgen.namespace" .) .Release.Namespace) -}}
{{- fail (printf "namespace.create is true, so the chart creates namespace %q, but the release itself is stored there (helm install -n %s), and Helm needs that namespace to exist first: install with -n default (or any other existing namespace), or set namespace.create=false and label %s with pod-security.kubernetes.io/enforce=privileged" .Release.Namespace .Release.Namespace .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{/* Values the schema cannot relate to each other. */}}
{{- define "xdpgen.checkValues" -}}
{{- if eq (int .Values.manager.metricsPort) (int .Values.manager.healthPort) -}}
{{- fail (printf "manager.metricsPort and manager.healthPort are both %d: give them different ports" (int .Values.manager.metricsPort)) -}}
{{- end -}}
{{- if eq (int .Values.agent.metricsPort) (int .Values.agent.healthPort) -}}
{{- fail (printf "agent.metricsPort and agent.healthPort are both %d: give them different ports (they are host ports of every sending node)" (int .Values.agent.metricsPort)) -}}
{{- end -}}
{{- if has (include "xdpgen.namespace" .) .Values.agent.extraNamespaces -}}
{{- fail (printf "agent.extraNamespaces lists %s, the chart's own namespace (namespace.name), which always gets the agents' service account: remove it from the list" (include "xdpgen.namespace" .)) -}}
{{- end -}}
{{- end -}}
