# LAB CHART: the objects the gpu_operator role waits on, running the lab's busybox image. No GPU.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gpu-operator
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: gpu-operator}}
  template:
    metadata: {labels: {app: gpu-operator}}
    spec:
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
          env:
            - {name: LAB_DRIVER_ENABLED, value: {{ .Values.driver.enabled | quote }}}
            - {name: LAB_TOOLKIT_ENABLED, value: {{ .Values.toolkit.enabled | quote }}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nvidia-device-plugin-daemonset
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  selector: {matchLabels: {app: nvidia-device-plugin-daemonset}}
  template:
    metadata: {labels: {app: nvidia-device-plugin-daemonset}}
    spec:
      tolerations: [{operator: Exists}]
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
