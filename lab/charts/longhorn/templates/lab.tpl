# LAB CHART: the objects the storage role waits on, running the lab's busybox image. Not Longhorn.
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: longhorn-manager
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  selector: {matchLabels: {app: longhorn-manager}}
  template:
    metadata: {labels: {app: longhorn-manager}}
    spec:
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: longhorn-driver-deployer
  namespace: {{ .Release.Namespace }}
  labels: {dgx-spark.cluster/lab-chart: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: longhorn-driver-deployer}}
  template:
    metadata: {labels: {app: longhorn-driver-deployer}}
    spec:
      containers:
        - name: lab-model
          image: {{ .Values.labImage }}
          imagePullPolicy: Never
          command: [sleep, infinity]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: longhorn-default-setting
  namespace: {{ .Release.Namespace }}
data:
  default-setting.yaml: |-
    default-data-path: {{ .Values.defaultSettings.defaultDataPath }}
    default-replica-count: {{ .Values.defaultSettings.defaultReplicaCount }}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: longhorn
  annotations:
    storageclass.kubernetes.io/is-default-class: {{ .Values.persistence.defaultClass | quote }}
    dgx-spark.cluster/lab-chart: "true"
provisioner: driver.longhorn.io
allowVolumeExpansion: true
reclaimPolicy: Delete
volumeBindingMode: Immediate
parameters:
  numberOfReplicas: {{ .Values.persistence.defaultClassReplicaCount | quote }}
