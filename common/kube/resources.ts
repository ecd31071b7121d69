// Typed calls on the resources Shoal touches. The types are client-node's, imported as types only
// (erased at build: no generated model code is loaded). Objects arrive as plain JSON, so timestamp
// fields typed `Date` are ISO strings at run time; read them through `timeString`.
import type {
  CoreV1Event,
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1LeaseSpec,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1Node,
  V1ObjectMeta,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
  V1StatefulSet,
  V1StorageClass,
  V1SubjectAccessReview,
  V1SubjectAccessReviewSpec,
  V1SubjectAccessReviewStatus,
  V1TokenReview,
  V1TokenReviewStatus,
} from '@kubernetes/client-node';
import { ShoalError } from '../errors.js';
import type { Bound, KubeClient } from './client.js';
import { isAlreadyExists } from './errors.js';
import type { Query } from './transport.js';

/** Where a kind lives in the API: /api/v1 (core) or /apis/<group>/<version>. */
export interface ResourceKind {
  kind: string;
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const kind = (k: string, group: string, version: string, plural: string, namespaced = true): ResourceKind => ({ kind: k, group, version, plural, namespaced });

export const KINDS = {
  Pod: kind('Pod', '', 'v1', 'pods'),
  ConfigMap: kind('ConfigMap', '', 'v1', 'configmaps'),
  Secret: kind('Secret', '', 'v1', 'secrets'),
  Event: kind('Event', '', 'v1', 'events'),
  ServiceAccount: kind('ServiceAccount', '', 'v1', 'serviceaccounts'),
  Service: kind('Service', '', 'v1', 'services'),
  PersistentVolumeClaim: kind('PersistentVolumeClaim', '', 'v1', 'persistentvolumeclaims'),
  PersistentVolume: kind('PersistentVolume', '', 'v1', 'persistentvolumes', false),
  Namespace: kind('Namespace', '', 'v1', 'namespaces', false),
  Node: kind('Node', '', 'v1', 'nodes', false),
  StatefulSet: kind('StatefulSet', 'apps', 'v1', 'statefulsets'),
  Lease: kind('Lease', 'coordination.k8s.io', 'v1', 'leases'),
  StorageClass: kind('StorageClass', 'storage.k8s.io', 'v1', 'storageclasses', false),
  Role: kind('Role', 'rbac.authorization.k8s.io', 'v1', 'roles'),
  RoleBinding: kind('RoleBinding', 'rbac.authorization.k8s.io', 'v1', 'rolebindings'),
  ClusterRole: kind('ClusterRole', 'rbac.authorization.k8s.io', 'v1', 'clusterroles', false),
  ClusterRoleBinding: kind('ClusterRoleBinding', 'rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', false),
  MutatingWebhookConfiguration: kind('MutatingWebhookConfiguration', 'admissionregistration.k8s.io', 'v1', 'mutatingwebhookconfigurations', false),
  TokenReview: kind('TokenReview', 'authentication.k8s.io', 'v1', 'tokenreviews', false),
  SubjectAccessReview: kind('SubjectAccessReview', 'authorization.k8s.io', 'v1', 'subjectaccessreviews', false),
} as const;

/** The table's kind for an object's apiVersion and kind (a manifest's), or undefined when Shoal does not know it. */
export function kindOf(apiVersion: string, kindName: string): ResourceKind | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  return Object.values(KINDS).find((k) => k.kind === kindName && k.group === group && k.version === version);
}

/** The URL path of a collection (no name) or of one object, optionally a subresource. */
export function resourcePath(k: ResourceKind, namespace: string | undefined, name?: string, subresource?: string): string {
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  const ns = k.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name === undefined ? '' : `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
  return `${base}${ns}/${k.plural}${obj}`;
}

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
}

/** A bound plus, optionally, the words an error starts with (default "<verb> <Kind> <ns>/<name>"). */
export type CallOptions = Bound & { what?: string };

/** CRUD on one kind in one namespace (or cluster-wide for cluster-scoped kinds). */
export class Resource<T> {
  constructor(
    private readonly client: KubeClient,
    readonly kind: ResourceKind,
    readonly namespace?: string,
  ) {}

  /** The collection's path (for a reflector). */
  get path(): string {
    return resourcePath(this.kind, this.namespace);
  }

  private what(verb: string, name: string | undefined, o: CallOptions): string {
    if (o.what) return o.what;
    const where = this.kind.namespaced && this.namespace ? `${this.namespace}/` : '';
    return `${verb} ${this.kind.kind}${name === undefined ? '' : ` ${where}${name}`}`;
  }

  private bound(o: CallOptions): Bound {
    return { ...(o.signal ? { signal: o.signal } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) };
  }

  get(name: string, o: CallOptions = {}): Promise<T> {
    return this.client.request<T>(this.what('read', name, o), { method: 'GET', path: resourcePath(this.kind, this.namespace, name) }, this.bound(o));
  }

  list(query: ListQuery = {}, o: CallOptions = {}): Promise<ObjectList<T>> {
    const q: Query = { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector };
    return this.client.request<ObjectList<T>>(this.what('list', undefined, o), { method: 'GET', path: this.path, query: q }, this.bound(o));
  }

  /**
   * One object by name through a list with `fieldSelector=metadata.name=<name>` (null when there is
   * none): for a Role that grants list but not get.
   */
  async findByName(name: string, o: CallOptions = {}): Promise<T | null> {
    const list = await this.list({ fieldSelector: `metadata.name=${name}` }, { ...o, what: this.what('find', name, o) });
    return list.items[0] ?? null;
  }

  create(body: T, o: CallOptions = {}): Promise<T> {
    const name = (body as { metadata?: { name?: string } }).metadata?.name;
    return this.client.request<T>(this.what('create', name, o), { method: 'POST', path: this.path, body }, this.bound(o));
  }

  /** PUT: fails with 409 Conflict when body.metadata.resourceVersion is stale. */
  replace(name: string, body: T, o: CallOptions = {}): Promise<T> {
    return this.client.request<T>(this.what('replace', name, o), { method: 'PUT', path: resourcePath(this.kind, this.namespace, name), body }, this.bound(o));
  }

  /**
   * Creates `body`, or, when an object of its name exists, replaces it at the live resourceVersion
   * (`kubectl apply` for objects the caller owns whole). Returns what the server stored.
   */
  async createOrReplace(body: T, o: CallOptions = {}): Promise<T> {
    try {
      return await this.create(body, o);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    const meta = (body as { metadata?: { name?: string; resourceVersion?: string } }).metadata ?? {};
    const name = meta.name ?? '';
    const live = (await this.get(name, o)) as { metadata?: { resourceVersion?: string } };
    return this.replace(name, { ...body, metadata: { ...meta, resourceVersion: live.metadata?.resourceVersion } } as T, o);
  }

  /** PATCH with the given patch type (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH). */
  patch(name: string, body: unknown, contentType: string, o: CallOptions & { subresource?: string } = {}): Promise<T> {
    return this.client.request<T>(
      this.what('patch', name, o),
      { method: 'PATCH', path: resourcePath(this.kind, this.namespace, name, o.subresource), body, contentType },
      this.bound(o),
    );
  }

  /**
   * POST to a subresource of one object whose answer is another type, e.g. serviceaccounts/<name>/token
   * (a TokenRequest in, the same TokenRequest with its status out).
   */
  createSubresource<B, R = B>(name: string, subresource: string, body: B, o: CallOptions = {}): Promise<R> {
    return this.client.request<R>(
      this.what(`create ${subresource} of`, name, o),
      { method: 'POST', path: resourcePath(this.kind, this.namespace, name, subresource), body },
      this.bound(o),
    );
  }

  /** DELETE, with optional DeleteOptions (preconditions, grace period). */
  delete(name: string, options?: Record<string, unknown>, o: CallOptions = {}): Promise<unknown> {
    return this.client.request<unknown>(
      this.what('delete', name, o),
      { method: 'DELETE', path: resourcePath(this.kind, this.namespace, name), ...(options ? { body: options } : {}) },
      this.bound(o),
    );
  }
}

/**
 * A Lease as JSON on the wire: the MicroTime fields are strings with microseconds (client-node's
 * V1Lease types them as Date, which is what its serializer turned into that string).
 */
export interface LeaseJson {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: Omit<V1LeaseSpec, 'acquireTime' | 'renewTime'> & { acquireTime?: string | Date; renewTime?: string | Date };
}

/** The resources bound to one namespace, as the agent and the tools use them. */
export interface Resources {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly pods: Resource<V1Pod>;
  readonly configMaps: Resource<V1ConfigMap>;
  readonly secrets: Resource<V1Secret>;
  readonly events: Resource<CoreV1Event>;
  readonly serviceAccounts: Resource<V1ServiceAccount>;
  readonly services: Resource<V1Service>;
  readonly persistentVolumeClaims: Resource<V1PersistentVolumeClaim>;
  readonly statefulSets: Resource<V1StatefulSet>;
  readonly leases: Resource<LeaseJson>;
  readonly roles: Resource<V1Role>;
  readonly roleBindings: Resource<V1RoleBinding>;
}

export function namespaced(client: KubeClient, namespace: string): Resources {
  return {
    client,
    namespace,
    pods: new Resource<V1Pod>(client, KINDS.Pod, namespace),
    configMaps: new Resource<V1ConfigMap>(client, KINDS.ConfigMap, namespace),
    secrets: new Resource<V1Secret>(client, KINDS.Secret, namespace),
    events: new Resource<CoreV1Event>(client, KINDS.Event, namespace),
    serviceAccounts: new Resource<V1ServiceAccount>(client, KINDS.ServiceAccount, namespace),
    services: new Resource<V1Service>(client, KINDS.Service, namespace),
    persistentVolumeClaims: new Resource<V1PersistentVolumeClaim>(client, KINDS.PersistentVolumeClaim, namespace),
    statefulSets: new Resource<V1StatefulSet>(client, KINDS.StatefulSet, namespace),
    leases: new Resource<LeaseJson>(client, KINDS.Lease, namespace),
    roles: new Resource<V1Role>(client, KINDS.Role, namespace),
    roleBindings: new Resource<V1RoleBinding>(client, KINDS.RoleBinding, namespace),
  };
}

/** Cluster-scoped kinds. */
export const namespaces = (client: KubeClient): Resource<V1Namespace> => new Resource<V1Namespace>(client, KINDS.Namespace);
export const nodes = (client: KubeClient): Resource<V1Node> => new Resource<V1Node>(client, KINDS.Node);
export const persistentVolumes = (client: KubeClient): Resource<V1PersistentVolume> => new Resource<V1PersistentVolume>(client, KINDS.PersistentVolume);
export const storageClasses = (client: KubeClient): Resource<V1StorageClass> => new Resource<V1StorageClass>(client, KINDS.StorageClass);
export const clusterRoles = (client: KubeClient): Resource<V1ClusterRole> => new Resource<V1ClusterRole>(client, KINDS.ClusterRole);
export const clusterRoleBindings = (client: KubeClient): Resource<V1ClusterRoleBinding> => new Resource<V1ClusterRoleBinding>(client, KINDS.ClusterRoleBinding);
export const mutatingWebhookConfigurations = (client: KubeClient): Resource<V1MutatingWebhookConfiguration> =>
  new Resource<V1MutatingWebhookConfiguration>(client, KINDS.MutatingWebhookConfiguration);

/**
 * Asks the API server who a bearer token belongs to (authentication.k8s.io/v1 TokenReview, as
 * kube-rbac-proxy does). The answer's status says authenticated or not; a failed call rejects.
 */
export async function reviewToken(client: KubeClient, token: string, o: Bound = {}, audiences?: string[]): Promise<V1TokenReviewStatus> {
  const review: V1TokenReview = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences } : {}) } };
  const answer = await new Resource<V1TokenReview>(client, KINDS.TokenReview).create(review, { ...o, what: 'create a TokenReview' });
  return answer.status ?? {};
}

/** Asks the API server whether a user may do something (authorization.k8s.io/v1 SubjectAccessReview). */
export async function reviewAccess(client: KubeClient, spec: V1SubjectAccessReviewSpec, o: Bound = {}): Promise<V1SubjectAccessReviewStatus> {
  const review: V1SubjectAccessReview = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec };
  const answer = await new Resource<V1SubjectAccessReview>(client, KINDS.SubjectAccessReview).create(review, { ...o, what: 'create a SubjectAccessReview' });
  return answer.status ?? { allowed: false };
}

/** Any object of a kind in KINDS, by its apiVersion and kind (a manifest's); throws for a kind the table lacks. */
export function resourceFor(client: KubeClient, obj: KubernetesObject): Resource<KubernetesObject> {
  const k = kindOf(obj.apiVersion ?? '', obj.kind ?? '');
  if (!k) throw new ShoalError(`no resource for ${obj.apiVersion ?? '?'} ${obj.kind ?? '?'}`, 'add the kind to KINDS in common/kube/resources.ts');
  return new Resource<KubernetesObject>(client, k, k.namespaced ? (obj.metadata?.namespace ?? 'default') : undefined);
}

/** The API server's version (GET /version). */
export function serverVersion(client: KubeClient, o: Bound = {}): Promise<{ major: string; minor: string; gitVersion: string }> {
  return client.request('read the server version', { method: 'GET', path: '/version' }, o);
}

/** A timestamp field read from JSON (a string) or built in code (a Date) as ISO text; '' when absent. */
export function timeString(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? v : '';
}

/** The wall clock in the microsecond format the API server requires for MicroTime fields (1.20 rejects milliseconds). */
export function microTime(at: Date | string = new Date()): string {
  return `${new Date(at).toISOString().slice(0, -1)}000Z`;
}
