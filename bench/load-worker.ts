import { parentPort, workerData } from "node:worker_threads";
import { drive, type LoadPlan } from "./load.ts";

parentPort!.postMessage(await drive(workerData as LoadPlan));
