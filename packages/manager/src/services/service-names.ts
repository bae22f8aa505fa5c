/**
 * Names for services created without one: `adjective_fish` (e.g. `brisk_marlin`), as Docker's
 * daemon gives a random name when `Spec.Name` is empty. Our own short word lists; a name already
 * taken is retried, and after a few collisions a number is appended.
 */
import { NameExistsError } from '../errors.js';

const ADJECTIVES = (
  'amber bold brisk calm clever coral deep eager fleet gentle glossy happy keen lively lucid ' +
  'merry nimble patient quiet rapid sandy shiny silver sleek steady sunny swift tidal vivid witty'
).split(' ');

const FISH = (
  'anchovy barracuda bass bream carp cod dace eel flounder goby grouper guppy haddock halibut ' +
  'herring koi mackerel marlin minnow perch pike plaice salmon sardine shad smelt snapper sole ' +
  'sprat trout tuna turbot'
).split(' ');

const PLAIN_TRIES = 10;
const MAX_TRIES = 1000;

/** A random integer in [0, n). */
export type RandomIndex = (n: number) => number;

const mathRandomIndex: RandomIndex = (n) => Math.floor(Math.random() * n);

/**
 * A service name not `taken`: `adjective_fish`, then `adjective_fishN` once the plain form
 * collided PLAIN_TRIES times. NameExistsError only if every try collides.
 */
export function randomServiceName(taken: (name: string) => boolean, random: RandomIndex = mathRandomIndex): string {
  for (let i = 0; i < MAX_TRIES; i++) {
    const base = `${ADJECTIVES[random(ADJECTIVES.length)] ?? ''}_${FISH[random(FISH.length)] ?? ''}`;
    const name = i < PLAIN_TRIES ? base : `${base}${random(100)}`;
    if (!taken(name)) return name;
  }
  throw new NameExistsError('service', `(every generated name, ${MAX_TRIES} tries)`);
}
