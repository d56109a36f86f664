/**
 * @peculiar/x509 registers its algorithms with tsyringe, and tsyringe refuses to load unless the
 * reflect-metadata API exists on `Reflect`. It only ever stores and reads constructor metadata for
 * classes that take no injected parameters, so the three calls it makes, backed by a WeakMap, are
 * enough; that saves a dependency on reflect-metadata. A real polyfill, if one is loaded first, wins:
 * nothing here replaces a function that already exists.
 *
 * This module must be imported before @peculiar/x509 (x509-lib.ts does so); importing the library
 * anywhere else first fails at load time with tsyringe's "requires a reflect polyfill".
 */
type MetadataKey = unknown;
type PropertyKeyOrNone = string | symbol | undefined;

const store = new WeakMap<object, Map<PropertyKeyOrNone, Map<MetadataKey, unknown>>>();

function ownMap(target: object, property: PropertyKeyOrNone, create: boolean): Map<MetadataKey, unknown> | undefined {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let entries = byProperty.get(property);
  if (!entries && create) {
    entries = new Map();
    byProperty.set(property, entries);
  }
  return entries;
}

const api = {
  defineMetadata(key: MetadataKey, value: unknown, target: object, property?: string | symbol): void {
    ownMap(target, property, true)!.set(key, value);
  },
  getOwnMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
    return ownMap(target, property, false)?.get(key);
  },
  // Metadata is inherited along the prototype chain, as reflect-metadata does it.
  getMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
    for (let o: object | null = target; o; o = Object.getPrototypeOf(o)) {
      const entries = ownMap(o, property, false);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  },
};

const reflect = Reflect as unknown as Record<string, unknown>;
for (const [name, fn] of Object.entries(api)) {
  if (typeof reflect[name] !== "function") reflect[name] = fn;
}

export {};
