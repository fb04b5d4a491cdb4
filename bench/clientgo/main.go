// Command clientgo is the client-go peer of kube-informer's benchmarks (bench/).
//
// It runs a client-go SharedIndexInformer (no-op handler unless stated) and prints its
// figures as one JSON line on stdout, the same fields as the Python peers:
//
//	-mode throughput  count MODIFIED events at the handler until -events are seen
//	-mode sync        time from start to HasSynced, RSS before/after, peak RSS
//	-mode latency     informer + workqueue; on dequeue, now minus the write time stored
//	                  in the ConfigMap's data["t"] (unix ns); ends on "stop" on stdin
//	-mode populate    create -count objects concurrently (fast setup for the benchmarks)
//	-mode encode      read one JSON object a line on stdin (any kind of the client-go
//	                  scheme, lists too) and write each as the API server serves it in
//	                  protobuf (the "k8s\x00"-prefixed runtime.Unknown envelope), framed
//	                  by a 4-byte big-endian length (the replay server's protobuf bodies)
//
// -protobuf makes the informers speak protobuf (ContentType and Accept
// "application/vnd.kubernetes.protobuf", JSON as the fallback), as in-tree controllers do.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

type result map[string]any

// mediaTypes records the media type of every successful API response (the informer's
// lists and watches), so that the runner can check the format a run really used.
type mediaTypes struct {
	mu   sync.Mutex
	seen map[string]bool
}

var responses = &mediaTypes{seen: map[string]bool{}}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (m *mediaTypes) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode < 300 {
			if mt, _, perr := mime.ParseMediaType(resp.Header.Get("Content-Type")); perr == nil {
				m.mu.Lock()
				m.seen[mt] = true
				m.mu.Unlock()
			}
		}
		return resp, err
	})
}

// list returns the media types seen so far, sorted.
func (m *mediaTypes) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.seen))
	for mt := range m.seen {
		out = append(out, mt)
	}
	sort.Strings(out)
	return out
}

func emit(r result) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "clientgo: "+format+"\n", args...)
	os.Exit(1)
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// peakRSSBytes is VmHWM (ru_maxrss survives exec: it would show the parent's peak).
func peakRSSBytes() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				if f := strings.Fields(line); len(f) >= 2 {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					return kb * 1024
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// settle runs the GC and returns freed memory to the OS, so RSS shows live memory.
func settle() (rss int64, heap uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssBytes(), ms.HeapAlloc
}

func nowUnix() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func stripManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

func main() {
	mode := flag.String("mode", "sync", "throughput | sync | latency | populate | encode")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	resource := flag.String("resource", "configmaps", "configmaps | deployments")
	namespace := flag.String("namespace", "", "namespace ('' = all)")
	events := flag.Int("events", 0, "throughput: MODIFIED events to wait for")
	strip := flag.Bool("strip-managed-fields", false, "informer transform dropping managedFields")
	count := flag.Int("count", 0, "populate: objects to create")
	concurrency := flag.Int("concurrency", 64, "populate: requests in flight")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	useProtobuf := flag.Bool("protobuf", false, "speak protobuf to the API server (JSON otherwise)")
	flag.Parse()
	klog.InitFlags(nil)
	if *mode == "encode" {
		encode(os.Stdin, os.Stdout)
		return
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig: %v", err)
	}
	// JSON, like the Python peers, or protobuf (-protobuf), as in-tree controllers use it;
	// no client-side throttling (the Python peers have none either).
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	if *useProtobuf {
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	cfg.QPS = -1
	cfg.Burst = 0
	cfg.WrapTransport = responses.wrap
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	switch *mode {
	case "populate":
		populate(ctx, client, *resource, *namespace, *count, *concurrency)
	case "throughput", "sync":
		runInformer(ctx, client, *mode, *resource, *namespace, *events, *strip)
	case "latency":
		runLatency(ctx, client, *namespace)
	default:
		fail("unknown -mode %q", *mode)
	}
}

func newInformer(client kubernetes.Interface, resource, namespace string) cache.SharedIndexInformer {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	switch resource {
	case "configmaps":
		return factory.Core().V1().ConfigMaps().Informer()
	case "deployments":
		return factory.Apps().V1().Deployments().Informer()
	}
	fail("unknown resource %q", resource)
	return nil
}

func runInformer(ctx context.Context, client kubernetes.Interface, mode, resource, namespace string, events int, strip bool) {
	rss0, heap0 := settle()
	informer := newInformer(client, resource, namespace)
	if strip {
		if err := informer.SetTransform(stripManagedFields); err != nil {
			fail("transform: %v", err)
		}
	}
	var adds, updates atomic.Int64
	var firstUpdate, lastUpdate atomic.Int64 // unix ns
	done := make(chan struct{})
	var once sync.Once
	registration, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { adds.Add(1) },
		UpdateFunc: func(old, new any) {
			n := updates.Add(1)
			t := time.Now().UnixNano()
			if n == 1 {
				firstUpdate.Store(t)
			}
			if events > 0 && n >= int64(events) {
				lastUpdate.Store(t)
				once.Do(func() { close(done) })
			}
		},
		DeleteFunc: func(obj any) {},
	})
	if err != nil {
		fail("handler: %v", err)
	}
	start := time.Now()
	stop := make(chan struct{})
	go informer.Run(stop)
	// Poll the handler registration's HasSynced tightly (WaitForCacheSync polls every
	// 100 ms, too coarse to time): the handler has seen every add of the initial list,
	// the same point every Python peer is timed at.
	for !registration.HasSynced() {
		if ctx.Err() != nil {
			fail("not synced before the timeout")
		}
		time.Sleep(time.Millisecond)
	}
	syncSeconds := time.Since(start).Seconds()
	objects := len(informer.GetStore().ListKeys())
	r := result{
		"peer": "client-go", "sync_seconds": syncSeconds, "objects": objects,
		"rss_before": rss0, "heap_before": heap0,
	}
	if mode == "throughput" {
		select {
		case <-done:
		case <-ctx.Done():
			fail("only %d of %d MODIFIED events before the timeout", updates.Load(), events)
		}
		r["events"] = updates.Load()
		r["first_event_unix"] = float64(firstUpdate.Load()) / 1e9
		r["last_event_unix"] = float64(lastUpdate.Load()) / 1e9
	} else {
		// The handler has seen every add once HasSynced is true for its registration;
		// wait for it so that its notifications are not counted as cache memory.
		for adds.Load() < int64(objects) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}
	rss1, heap1 := settle()
	r["rss_after"] = rss1
	r["heap_after"] = heap1
	r["peak_rss"] = peakRSSBytes()
	r["content_types"] = responses.list()
	close(stop)
	emit(r)
}

func runLatency(ctx context.Context, client kubernetes.Interface, namespace string) {
	informer := newInformer(client, "configmaps", namespace)
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(old, new any) { enqueue(new) },
		DeleteFunc: func(obj any) {},
	})
	if err != nil {
		fail("handler: %v", err)
	}
	stop := make(chan struct{})
	go informer.Run(stop)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fail("not synced")
	}
	var mu sync.Mutex
	var latencies []float64
	since := time.Now().UnixNano()
	lister := informer.GetIndexer()
	go func() {
		for {
			key, shutdown := queue.Get()
			if shutdown {
				return
			}
			now := time.Now().UnixNano()
			if obj, ok, _ := lister.GetByKey(key); ok {
				if cm, ok := obj.(*corev1.ConfigMap); ok {
					if t, err := strconv.ParseInt(cm.Data["t"], 10, 64); err == nil && t > since {
						mu.Lock()
						latencies = append(latencies, float64(now-t)/1e6)
						mu.Unlock()
					}
				}
			}
			queue.Forget(key)
			queue.Done(key)
		}
	}()
	emit(result{"ready": true})
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		if strings.TrimSpace(scanner.Text()) == "stop" {
			break
		}
	}
	queue.ShutDown()
	close(stop)
	mu.Lock()
	defer mu.Unlock()
	sort.Float64s(latencies)
	emit(result{"peer": "client-go", "latencies_ms": latencies, "content_types": responses.list()})
}

func populate(ctx context.Context, client kubernetes.Interface, resource, namespace string, count, concurrency int) {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		fail("namespace: %v", err)
	}
	start := time.Now()
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count || ctx.Err() != nil {
					return
				}
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					switch resource {
					case "configmaps":
						_, err = client.CoreV1().ConfigMaps(namespace).Create(ctx, configMap(i), metav1.CreateOptions{FieldManager: "bench"})
					case "deployments":
						_, err = client.AppsV1().Deployments(namespace).Create(ctx, deployment(i), metav1.CreateOptions{FieldManager: "bench"})
					}
					if err == nil || strings.Contains(err.Error(), "already exists") {
						err = nil
						break
					}
					time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				}
				if err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	emit(result{"created": count - int(failures.Load()), "failures": failures.Load(), "seconds": time.Since(start).Seconds()})
}

// encode writes every JSON object read from in (one a line) to out in the API server's
// protobuf encoding: the same serializer (apimachinery's protobuf.Serializer) the
// apiserver answers "Accept: application/vnd.kubernetes.protobuf" with, so the bytes
// are what it would send for that object. Each is preceded by its length (4 bytes, big
// endian). No defaulting, no conversion: the object is encoded as it is given.
func encode(in io.Reader, out io.Writer) {
	decoder := scheme.Codecs.UniversalDeserializer()
	encoder := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	alloc := &kruntime.SimpleAllocator{}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 1<<30)
	w := bufio.NewWriterSize(out, 1<<20)
	var buf bytes.Buffer
	var size [4]byte
	for line := 1; scanner.Scan(); line++ {
		if len(bytes.TrimSpace(scanner.Bytes())) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(scanner.Bytes(), nil, nil)
		if err != nil {
			fail("encode: line %d: %v", line, err)
		}
		buf.Reset()
		if err := encoder.EncodeWithAllocator(obj, &buf, alloc); err != nil {
			fail("encode: line %d: %v", line, err)
		}
		binary.BigEndian.PutUint32(size[:], uint32(buf.Len()))
		w.Write(size[:])
		w.Write(buf.Bytes())
	}
	if err := scanner.Err(); err != nil {
		fail("encode: %v", err)
	}
	if err := w.Flush(); err != nil {
		fail("encode: %v", err)
	}
}

// configMap and deployment mirror bench/_objects.py (keep them in step).
func configMap(i int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("cm-%06d", i),
			Labels: map[string]string{"app": "bench", "shard": strconv.Itoa(i % 16)},
		},
		Data: map[string]string{"key": "value", "other": strings.Repeat("x", 40)},
	}
}

func deployment(i int) *appsv1.Deployment {
	name := fmt.Sprintf("web-%06d", i)
	labels := map[string]string{"app": name, "tier": "frontend", "team": "payments"}
	replicas := int32(3)
	grace := int64(30)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Labels: labels,
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.example.com/payments/web:1.24.3",
						Ports:           []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
						ImagePullPolicy: corev1.PullIfNotPresent,
					}},
					RestartPolicy:                 corev1.RestartPolicyAlways,
					TerminationGracePeriodSeconds: &grace,
				},
			},
		},
	}
}
