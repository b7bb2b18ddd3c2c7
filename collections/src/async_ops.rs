//! Async one-call forms of the queues' waiting operations: [`atomically_async`] transactions
//! that wait on the task's waker (a `Poll::Pending`) where the blocking forms park the thread.
//!
//! They live apart from the blocking `.atomic()` forms so that each stays a short, separate
//! `impl` block.

use crate::{Atomic, TBoundedQueue, TQueue, atomically_async};

impl<'a, T: Clone + Send + Sync + 'static> Atomic<'a, TQueue<T>> {
    /// Pops, waiting while the queue is empty: a future that completes with the front item.
    ///
    /// The async form of [`pop_wait`](Atomic::pop_wait): an empty queue makes the future
    /// return `Pending` (its task woken by the commit that pushes), never blocking the thread.
    /// Cancel-safe: dropping the future before it completes removes nothing from the queue and
    /// leaves no waker behind.
    ///
    /// # Panics
    ///
    /// If polled inside a transaction. Also, as [`pop_wait`](Atomic::pop_wait), if the queue
    /// is [closed](TQueue::close) and empty, on the first poll or on the poll after the close
    /// woke the future: on a queue that may be closed, await
    /// `atomically_async(|tx| queue.recv(tx))` instead, which completes with `None` there (see
    /// [`TQueue::recv`]). A panic passed on from the poll that popped (another task's waker
    /// that the pop's commit woke, see [`atomically_async`]) loses the popped item.
    ///
    /// # Examples
    ///
    /// ```
    /// # use commute::__block_on as block_on;
    /// use commute::TQueue;
    /// use std::sync::Arc;
    ///
    /// let jobs = Arc::new(TQueue::new());
    /// let producer = {
    ///     let jobs = jobs.clone();
    ///     std::thread::spawn(move || jobs.atomic().push("resize image"))
    /// };
    /// // In a tokio task: `let job = jobs.atomic().pop_wait_async().await;`
    /// let job = block_on(jobs.atomic().pop_wait_async());
    /// assert_eq!(job, "resize image");
    /// producer.join().unwrap();
    /// ```
    pub async fn pop_wait_async(self) -> T {
        // An item there: the one-call pop, within this poll. Empty: the transaction that waits.
        if let Some(item) = self.pop() {
            return item;
        }
        let queue = self.0;
        atomically_async(|tx| queue.pop_wait(tx)).await
    }
}

impl<'a, T: Clone + Send + Sync + 'static> Atomic<'a, TBoundedQueue<T>> {
    /// Pushes, waiting while the queue is full: a future that completes once `item` is in.
    ///
    /// The async form of [`push`](Atomic::push); cancel-safe: dropping the future before it
    /// completes pushes nothing.
    ///
    /// # Panics
    ///
    /// If polled inside a transaction. Also, as [`push`](Atomic::push), if the queue is
    /// [closed](TBoundedQueue::close), on the first poll or on the poll after the close woke
    /// the future: on a queue that may be closed, await
    /// `atomically_async(|tx| queue.send(tx, item.clone()))` instead, which completes with
    /// `Err(Closed(item))` there (see [`TBoundedQueue::send`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use commute::__block_on as block_on;
    /// use commute::TBoundedQueue;
    /// use std::sync::Arc;
    ///
    /// let q = Arc::new(TBoundedQueue::with_capacity(1));
    /// q.atomic().push(1);
    /// let consumer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.atomic().pop_wait())
    /// };
    /// block_on(q.atomic().push_async(2)); // waits until the consumer made room
    /// assert_eq!(consumer.join().unwrap(), 1);
    /// assert_eq!(q.atomic().pop(), Some(2));
    /// ```
    pub async fn push_async(self, item: T) {
        let queue = self.0;
        atomically_async(|tx| queue.push(tx, item.clone())).await
    }

    /// Pops, waiting while the queue is empty: the async form of
    /// [`pop_wait`](Atomic::pop_wait); cancel-safe.
    ///
    /// # Panics
    ///
    /// If polled inside a transaction. Also, as [`pop_wait`](Atomic::pop_wait), if the queue
    /// is [closed](TBoundedQueue::close) and empty, on the first poll or on the poll after the
    /// close woke the future: on a queue that may be closed, await
    /// `atomically_async(|tx| queue.recv(tx))` instead, which completes with `None` there (see
    /// [`TBoundedQueue::recv`]). A panic passed on from the poll that popped (a waiting
    /// pusher's waker that the pop's commit woke, see [`atomically_async`]) loses the popped
    /// item.
    ///
    /// # Examples
    ///
    /// ```
    /// # use commute::__block_on as block_on;
    /// let q = commute::TBoundedQueue::with_capacity(2);
    /// q.atomic().push('a');
    /// assert_eq!(block_on(q.atomic().pop_wait_async()), 'a');
    /// ```
    pub async fn pop_wait_async(self) -> T {
        let queue = self.0;
        atomically_async(|tx| queue.pop_wait(tx)).await
    }
}
