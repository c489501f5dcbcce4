/** Demo function: writes a few log lines per invocation so that the pipeline has something to ship. */
const ORDERS = ["bagel", "pretzel", "croissant", "muffin"];

export async function handler(event: { id?: string }): Promise<{ order: string }> {
  const order = ORDERS[Math.floor(Math.random() * ORDERS.length)] ?? "bagel";
  console.info(`received scheduled event ${event.id ?? "manual"}`);
  console.log(JSON.stringify({ level: "info", msg: "order baked", order }));
  if (Math.random() < 0.1) console.warn(`order ${order} took longer than expected`);
  return { order };
}
