package agent

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// replayCapture reads the capture tg's spec.replay names from its ConfigMap, through the API server (the agent
// caches no ConfigMap: it reads one per run, get only).
func (a *Agent) replayCapture(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*dataplane.Capture, error) {
	r := tg.Spec.Replay
	key := r.Key
	if key == "" {
		key = xdpgenv1alpha1.DefaultReplayKey
	}
	var cm corev1.ConfigMap
	if err := a.nodes.Get(ctx, client.ObjectKey{Namespace: tg.Namespace, Name: r.ConfigMap}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("spec.replay.configMap %s: no such ConfigMap in namespace %s: create it (kubectl create configmap %s -n %s --from-file=%s=FILE.pcap)",
				r.ConfigMap, tg.Namespace, r.ConfigMap, tg.Namespace, key)
		}
		return nil, fmt.Errorf("spec.replay.configMap %s: %w", r.ConfigMap, err)
	}
	data, ok := cm.BinaryData[key]
	if !ok {
		var keys []string
		for k := range cm.BinaryData {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		hint := "it has no binaryData"
		if len(keys) > 0 {
			hint = "its binaryData keys are " + strings.Join(keys, ", ")
		}
		if _, inData := cm.Data[key]; inData {
			hint = key + " is in its data, which holds text: a capture is binary, give it with --from-file"
		}
		return nil, fmt.Errorf("spec.replay.key %s: ConfigMap %s holds no capture under it (%s): give the key that holds the capture", key, r.ConfigMap, hint)
	}
	c, err := dataplane.ReadCapture(dataplane.FieldCapture, bytes.NewReader(data))
	if err != nil {
		return nil, userError(err)
	}
	return c, nil
}
