// Node 20 lacks Promise.withResolvers (Node 22), which a few of js-libp2p
// 2.x's transitive dependencies (it-queue) call. Imported first.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
