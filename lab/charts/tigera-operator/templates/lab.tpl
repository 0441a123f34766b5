# LAB CHART: the objects the cni role waits on, running the lab's busybox image. Not Calico.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tigera-operator
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {name: tigera-operator}}
  template:
    metadata: {labels: {name: tigera-operator}}
    spec:
      # Like the real operator and calico-node: on the host's network, so they never wait for a pod network.
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
---
apiVersion: v1
kind: Namespace
metadata:
  name: calico-system
  labels: {dgx-spark.cluster/lab-chart: "true"}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: calico-node
  namespace: calico-system
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  selector: {matchLabels: {k8s-app: calico-node}}
  template:
    metadata: {labels: {k8s-app: calico-node}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
{{- if .Values.installation.enabled }}
---
apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
spec:
{{ toYaml (omit .Values.installation "enabled") | indent 2 }}
{{- end }}
{{- range list "calico" "apiserver" }}
---
# LAB CHART: the real operator publishes these conditions; the model states them.
apiVersion: operator.tigera.io/v1
kind: TigeraStatus
metadata:
  name: {{ . }}
status:
  conditions:
    - {type: Available, status: "True", reason: AllObjectsAvailable, message: "LAB CHART model"}
    - {type: Degraded, status: "False", reason: AllObjectsAvailable, message: ""}
{{- end }}
