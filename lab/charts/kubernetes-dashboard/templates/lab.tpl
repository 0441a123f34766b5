{{- /* LAB CHART: the objects the dashboard role waits on and the Kong proxy Service it reaches the Dashboard through,
running the lab's app stand-in image. Not the Dashboard: the gateway answers plain HTTP, nothing logs in. */ -}}
{{- $full := .Release.Name -}}
{{- if not (contains "kubernetes-dashboard" .Release.Name) }}{{ $full = printf "%s-kubernetes-dashboard" .Release.Name }}{{ end -}}
{{- if .Values.fullnameOverride }}{{ $full = .Values.fullnameOverride }}{{ end -}}
{{- $kong := .Release.Name -}}
{{- if not (contains "kong" .Release.Name) }}{{ $kong = printf "%s-kong" .Release.Name }}{{ end -}}
{{- if .Values.kong.fullnameOverride }}{{ $kong = .Values.kong.fullnameOverride }}{{ end -}}
{{- $suffix := dict "api" "api" "auth" "auth" "web" "web" "metricsScraper" "metrics-scraper" -}}
{{- range $component := list "api" "auth" "web" "metricsScraper" }}
{{- if or (ne $component "metricsScraper") $.Values.metricsScraper.enabled }}
---
# LAB CHART: the Dashboard's {{ $component }} Deployment, modelled (it only sleeps).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $full }}-{{ get $suffix $component }}
  namespace: {{ $.Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true", app.kubernetes.io/name: kubernetes-dashboard, app.kubernetes.io/component: {{ get $suffix $component }}}
spec:
  replicas: {{ (index $.Values $component).scaling.replicas }}
  selector: {matchLabels: {app: {{ $full }}-{{ get $suffix $component }}}}
  template:
    metadata:
      labels: {app: {{ $full }}-{{ get $suffix $component }}, dgx-spark.cluster/lab-chart: "true"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: lab-model
          image: {{ $.Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
          resources:
            requests: {cpu: 5m, memory: 8Mi}
            limits: {cpu: 100m, memory: 32Mi}
{{- end }}
{{- end }}
{{- if .Values.kong.enabled }}
---
# LAB CHART: Kong's Deployment, the Dashboard's gateway, modelled by the app stand-in answering plain HTTP.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $kong }}
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true", app.kubernetes.io/name: kong}
spec:
  replicas: {{ .Values.kong.replicaCount }}
  selector: {matchLabels: {app: {{ $kong }}}}
  template:
    metadata:
      labels: {app: {{ $kong }}, dgx-spark.cluster/lab-chart: "true"}
    spec:
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          env:
            - {name: LAB_STANDIN_APP, value: kubernetes-dashboard}
            - {name: LAB_STANDIN_PORT, value: {{ .Values.kong.proxy.tls.containerPort | quote }}}
          ports:
            - {name: proxy-tls, containerPort: {{ .Values.kong.proxy.tls.containerPort }}, protocol: TCP}
          readinessProbe:
            httpGet: {path: /api/v1/login/status, port: proxy-tls}
            periodSeconds: 2
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 500m, memory: 64Mi}
---
# LAB CHART: Kong's proxy Service, as the real chart names and types it (its port answers plain HTTP here).
apiVersion: v1
kind: Service
metadata:
  name: {{ $kong }}-proxy
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true", app.kubernetes.io/name: kong}
  {{- with .Values.kong.proxy.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.kong.proxy.type }}
  selector: {app: {{ $kong }}}
  ports:
    - {name: kong-proxy-tls, port: {{ .Values.kong.proxy.tls.servicePort }}, targetPort: proxy-tls, protocol: TCP}
{{- end }}
