// Package storage keeps UnixFS content for the node: a blockstore (pack
// files with a pebble index in new repos, flatfs in older ones) with hash
// checks and a quota, kubo-compatible UnixFS import and export, bitswap on
// the node's libp2p host with the DHT for provider records, whole-DAG
// streams between VFT nodes (CARProtocol), recursive pins in the node's
// datastore, and garbage collection.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/boxo/bitswap"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	pin "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/boxo/pinning/pinner/dspinner"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	flatfs "github.com/ipfs/go-ds-flatfs"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// datastorePrefix is where this package keeps its keys (pins) in the
// node's shared datastore; other components use other prefixes.
const datastorePrefix = "/storage"

// Options change how New builds a Store; the zero value is what a node
// runs.
type Options struct {
	// Datastore, when set, keeps the Store's metadata (pins) under
	// /storage in it instead of opening <repo>/datastore itself. The
	// caller keeps ownership: Close does not close it.
	Datastore datastore.Batching
	// pebbleFS replaces the disk under <repo>/datastore (tests: a
	// crashable in-memory file system).
	pebbleFS vfs.FS
}

// Store is the node's content store. All methods are safe for concurrent use.
type Store struct {
	cfg  Config
	repo string
	log  *slog.Logger
	host host.Host
	rt   routing.ContentRouting

	blocks   blockDatastore
	ds       datastore.Batching
	ownDS    bool
	guard    *guardedBlockstore
	bstore   blockstore.Blockstore // idstore over guard
	gcl      blockstore.GCLocker
	bswap    *bitswap.Bitswap // nil when offline
	bserv    blockservice.BlockService
	offline  blockservice.BlockService
	dag      ipld.DAGService // online: fetches what is missing
	localDAG ipld.DAGService // never touches the network
	pinner   pin.Pinner
	carSent  atomic.Int64 // blocks sent over CARProtocol

	announcedMu sync.Mutex
	announced   map[cid.Cid]time.Time // by provide: when each announce began

	ctx       context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex // guards closing against new background work
	closing   bool
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens (creating if needed) the block store in <repoDir>/blocks (a
// flatfs store already there is kept) and,
// unless Options.Datastore is given, the pebble datastore in <repoDir>/datastore.
// h and r may be nil for an offline store: without h there is no bitswap,
// without r bitswap only asks connected peers and nothing is provided.
// New does no network I/O.
func New(cfg Config, repoDir string, h host.Host, r routing.ContentRouting, log *slog.Logger, opts Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, repo: repoDir, log: log.With("component", "storage"), host: h, rt: r}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.cancel()
			s.closeStores()
		}
	}()

	if err := os.MkdirAll(repoDir, 0o700); err != nil {
		return nil, fmt.Errorf("create repo dir %s: %w", repoDir, err)
	}
	blocksDir := filepath.Join(repoDir, "blocks")
	bds, err := openBlockDatastore(blocksDir, s.log)
	if err != nil {
		return nil, fmt.Errorf("open block store %s: %w", blocksDir, err)
	}
	s.blocks = bds

	s.ds = opts.Datastore
	if s.ds == nil {
		dsDir := filepath.Join(repoDir, "datastore")
		pds, err := openDatastore(dsDir, opts.pebbleFS)
		if err != nil {
			return nil, fmt.Errorf("open datastore %s: %w", dsDir, err)
		}
		s.ds, s.ownDS = pds, true
	}

	base := blockstore.NewBlockstore(bds, blockstore.NoPrefix())
	free := func() (int64, int64, error) { return freeSpace(blocksDir) }
	if _, _, err := free(); err != nil {
		s.log.Warn("cannot read free disk space; without storage.max_bytes the blocks may fill the disk", "err", err)
		free = nil
	}
	s.guard = newGuardedBlockstore(base, bds, cfg.MaxBytes, free, cfg.HashOnRead, s.log)
	if _, packed := bds.(*packStore); packed {
		s.guard.hashedRecently = newRecentSet(recentlyHashedBlocks)
	}
	s.bstore = blockstore.NewIdStore(s.guard)
	s.gcl = blockstore.NewGCLocker()

	var exch exchange.Interface
	if h != nil {
		var finder routing.ContentDiscovery
		if r != nil {
			finder = r
		}
		// libp2p tells bitswap about new connections only; replay the ones
		// the host already has (bootstrap peers dialled before New) so
		// bitswap asks them too.
		evm := bsnetwork.NewConnectEventManager()
		s.bswap = bitswap.New(s.ctx, bsnet.NewFromIpfsHost(h, bsnet.WithConnectEventManager(evm)), finder, s.bstore,
			bitswap.SetSimulateDontHavesOnTimeout(false))
		for _, conn := range h.Network().Conns() {
			if !conn.Stat().Limited {
				evm.Connected(conn.RemotePeer())
			}
		}
		exch = s.bswap
		car := &carServer{s: s, sent: &s.carSent, active: map[peer.ID]bool{}}
		h.SetStreamHandler(CARProtocol, car.handle)
		h.SetStreamHandler(CARMultiProtocol, car.handleMulti)
	}
	s.bserv = blockservice.New(s.bstore, exch)
	s.offline = blockservice.New(s.bstore, nil)
	s.dag = merkledag.NewDAGService(s.bserv)
	s.localDAG = merkledag.NewDAGService(s.offline)

	// The pinner only ever reads local blocks: pinning content that is not
	// all here must fail, not start a download.
	p, err := dspinner.New(s.ctx, namespace.Wrap(s.ds, datastore.NewKey(datastorePrefix)), s.localDAG)
	if err != nil {
		return nil, fmt.Errorf("load pins: %w", err)
	}
	s.pinner = p
	if cfg.Provide && r != nil && cfg.ReprovideInterval > 0 {
		s.wg.Add(1)
		go s.reprovideLoop(cfg.ReprovideInterval)
	}
	ok = true
	return s, nil
}

// blockDatastore is where the blocks live: a pack store, or flatfs in
// repos created before it.
type blockDatastore interface {
	datastore.Batching
	DiskUsage(ctx context.Context) (uint64, error)
}

// openBlockDatastore opens the pack store in dir, or the flatfs store a
// repo created before the pack store has there (kept as it is: both
// import and fetch work on it, only slower).
func openBlockDatastore(dir string, log *slog.Logger) (blockDatastore, error) {
	if isFlatfsDir(dir) {
		log.Info("this repo keeps its blocks in flatfs (one file per block, as before); new repos use the faster pack store", "dir", dir)
		return flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), false)
	}
	return openPackStore(dir, log)
}

// openDatastore opens the pebble datastore the Store owns. Writes are not
// synced one by one: what must survive a power loss once a caller was told
// it is stored (pins, job records, the payout and escrow journals,
// reputation) is followed by Sync, which fsyncs pebble's log. Syncing every
// write (the provider's keystore writes for every block) took concurrent
// jobs from 42 to 3–7 a second in BenchmarkJobLatency.
func openDatastore(dir string, fs vfs.FS) (*pebbleds.Datastore, error) {
	opts := &pebble.Options{FS: fs}
	return pebbleds.NewDatastore(dir, pebbleds.WithPebbleOpts(opts))
}

// reprovideLoop announces every pinned root again each interval; the
// first round is one interval after start (New does no network I/O).
func (s *Store) reprovideLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		pins, err := s.Pins(s.ctx)
		if err != nil {
			s.log.Warn("reprovide: list pins", "err", err)
			continue
		}
		for _, c := range pins {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.FetchTimeout)
			err := s.rt.Provide(ctx, c, true)
			cancel()
			if s.ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("reprovide failed", "cid", c, "err", err)
			}
		}
		s.log.Debug("reprovided pinned roots", "count", len(pins))
	}
}

// Datastore returns the datastore holding the pins, for components that
// keep their own state next to it (under their own key prefix).
func (s *Store) Datastore() datastore.Batching { return s.ds }

// DAG returns a DAG service that fetches missing blocks over bitswap.
func (s *Store) DAG() ipld.DAGService { return s.dag }

// Blockstore returns the verified, quota-checked local blockstore.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bstore }

// Close stops bitswap and pending provides and closes the stores. It is
// safe to call more than once. Calls still running when Close is called
// fail (the stores close under them), so the node closes storage after
// the API and the market have stopped.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		if s.host != nil {
			s.host.RemoveStreamHandler(CARProtocol)
			s.host.RemoveStreamHandler(CARMultiProtocol)
		}
		s.cancel()
		var errs []error
		if s.bswap != nil {
			errs = append(errs, s.bswap.Close())
		}
		s.wg.Wait()
		if s.pinner != nil {
			errs = append(errs, s.pinner.Close())
		}
		errs = append(errs, s.closeStores())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Store) closeStores() error {
	var errs []error
	if s.blocks != nil {
		errs = append(errs, s.blocks.Close())
	}
	if s.ownDS && s.ds != nil {
		errs = append(errs, s.ds.Close())
	}
	return errors.Join(errs...)
}

// live returns ErrClosed after Close.
func (s *Store) live() error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// Announcing a CID is a DHT lookup of the peers closest to it and a
// record sent to each: in a 50-node network, 20-odd round trips and about
// 2 MB of garbage across the nodes. The records live 48 h and reprovideLoop
// renews pinned roots, so a CID this store announced less than
// announceAgainAfter ago is not announced again: a miner whose jobs keep
// producing the same result, a submitter adding the same dataset twice.
// At most maxAnnounced CIDs are remembered.
const (
	announceAgainAfter = time.Hour
	maxAnnounced       = 4096
)

// provide announces c on the DHT in the background, unless this store
// announced it lately; failures are logged (and c is announced again on
// the next call), since content is still served to peers that ask bitswap
// directly.
func (s *Store) provide(c cid.Cid) {
	if !s.cfg.Provide || s.rt == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || !s.startAnnounce(c, time.Now()) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.FetchTimeout)
		defer cancel()
		if err := s.rt.Provide(ctx, c, true); err != nil {
			s.forgetAnnounce(c)
			if s.ctx.Err() == nil {
				s.log.Warn("provide failed", "cid", c, "err", err)
			}
		}
	}()
}

// startAnnounce says whether c is to be announced now, and if so notes
// that it was: an announce that is running or began less than
// announceAgainAfter ago is enough.
func (s *Store) startAnnounce(c cid.Cid, now time.Time) bool {
	s.announcedMu.Lock()
	defer s.announcedMu.Unlock()
	if at, ok := s.announced[c]; ok && now.Sub(at) < announceAgainAfter {
		return false
	}
	if s.announced == nil {
		s.announced = map[cid.Cid]time.Time{}
	}
	if len(s.announced) >= maxAnnounced {
		for k, at := range s.announced {
			if now.Sub(at) >= announceAgainAfter {
				delete(s.announced, k)
			}
		}
	}
	if len(s.announced) < maxAnnounced {
		s.announced[c] = now
	}
	return true
}

// forgetAnnounce drops c after a failed announce, so the next call tries
// again.
func (s *Store) forgetAnnounce(c cid.Cid) {
	s.announcedMu.Lock()
	defer s.announcedMu.Unlock()
	delete(s.announced, c)
}

// syncWrites says a block write holds none of the block's bytes once it
// has returned, even failed: the pack store's do; flatfs may still be
// writing after a failed put.
func (s *Store) syncWrites() bool {
	_, packed := s.blocks.(*packStore)
	return packed
}
